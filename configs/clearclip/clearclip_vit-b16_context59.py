# ClearCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-B/16, on PASCAL Context without background
# (PC59).
# Settings: mc-lan/ClearCLIP configs/cfg_context59.py@ad68a40 over the defaults of
# clearclip_segmentor.py (reference notes §2.2-§2.3).
# Published mIoU: 35.9 (paper) [2nd] (reference notes §13).
_base_ = [
    '../_base_/models/clearclip_harness.py',
    '../_base_/datasets/context59.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_context59.py (equal to SCLIP's file)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_context59.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_context59.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
