# Vanilla CLIP (the last block unchanged) in SCLIP's harness, OpenAI CLIP ViT-B/16, on Cityscapes
# (City).
# Settings: SCLIP's for this benchmark with the last-block attention left as CLIP's own:
# wangf3014/SCLIP configs/cfg_city_scapes.py@b56bd30 over the defaults of clip_segmentor.py
# (reference notes §2.2-§2.3).
# Published mIoU: none in the reference notes (model_zoo.md).
_base_ = [
    '../_base_/models/vanilla_harness.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_city_scapes.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_city_scapes.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 560: cfg_city_scapes.py
    dict(type='Resize', scale=(2048, 560), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
