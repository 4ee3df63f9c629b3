# ClearCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-B/16, on ADE20K-150 (ADE).
# Settings: mc-lan/ClearCLIP configs/cfg_ade20k.py@ad68a40 over the defaults of
# clearclip_segmentor.py (reference notes §2.2-§2.3).
# Published mIoU: 16.7 (paper) [2nd] (reference notes §13).
_base_ = [
    '../_base_/models/clearclip_harness.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_ade20k.py (equal to SCLIP's file)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_ade20k.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_ade20k.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
