# ClearCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-B/16, on PASCAL Context with background (PC60).
# Settings: mc-lan/ClearCLIP configs/cfg_context60.py@ad68a40 over the defaults of
# clearclip_segmentor.py (reference notes §2.2-§2.3).
# Published mIoU: 32.6 (paper) [2nd] (reference notes §13).
_base_ = [
    '../_base_/models/clearclip_harness.py',
    '../_base_/datasets/context60.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_context60.py (equal to SCLIP's file)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_context60.txt'),
    prob_thd=0.15,  # cfg_context60.py
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_context60.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
