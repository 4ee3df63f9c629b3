# ClearCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-B/16, on PASCAL VOC 2012 without background
# (VOC20).
# Settings: mc-lan/ClearCLIP configs/cfg_voc20.py@ad68a40 over the defaults of
# clearclip_segmentor.py (reference notes §2.2-§2.3).
# Published mIoU: 80.9 (paper) [2nd] (reference notes §13).
_base_ = [
    '../_base_/models/clearclip_harness.py',
    '../_base_/datasets/voc20.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_voc20.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'clearclip/cls_voc20.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_voc20.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
