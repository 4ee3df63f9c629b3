# Vanilla CLIP (the last block unchanged) in SCLIP's harness, OpenAI CLIP ViT-B/16, on PASCAL VOC
# 2012 with background (VOC21).
# Settings: SCLIP's for this benchmark with the last-block attention left as CLIP's own:
# wangf3014/SCLIP configs/cfg_voc21.py@b56bd30 over the defaults of clip_segmentor.py (reference
# notes §2.2-§2.3).
# Published mIoU: none in the reference notes (model_zoo.md).
_base_ = [
    '../_base_/models/vanilla_harness.py',
    '../_base_/datasets/voc21.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_voc21.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_voc21.txt'),
    logit_scale=65,  # cfg_voc21.py
    prob_thd=0.1,  # cfg_voc21.py
    area_thd=0.1,  # cfg_voc21.py
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_voc21.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
