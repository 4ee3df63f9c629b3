# Vanilla CLIP (the last block unchanged) in SCLIP's harness, OpenAI CLIP ViT-B/16, on
# COCO-Stuff-164k (Stuff).
# Settings: SCLIP's for this benchmark with the last-block attention left as CLIP's own:
# wangf3014/SCLIP configs/cfg_coco_stuff164k.py@b56bd30 over the defaults of clip_segmentor.py
# (reference notes §2.2-§2.3).
# Published mIoU: none in the reference notes (model_zoo.md).
_base_ = [
    '../_base_/models/vanilla_harness.py',
    '../_base_/datasets/coco-stuff171.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_coco_stuff164k.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_coco_stuff.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_coco_stuff164k.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
