# ClearCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-B/16, on Cityscapes (City).
# Settings: mc-lan/ClearCLIP configs/cfg_city_scapes.py@ad68a40 over the defaults of
# clearclip_segmentor.py (reference notes §2.2-§2.3).
# Published mIoU: 30.0 (paper) [2nd] (reference notes §13).
_base_ = [
    '../_base_/models/clearclip_harness.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_city_scapes.py (equal to SCLIP's file)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_city_scapes.txt'),
    slide_crop=224,  # cfg_city_scapes.py
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_city_scapes.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
