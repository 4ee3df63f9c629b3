# ProxyCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-B/16 with a DINO ViT-B/8 proxy, on PASCAL
# Context without background (PC59).
# Settings: mc-lan/ProxyCLIP configs/cfg_context59.py@e7b767f over base_config.py and the defaults
# of proxyclip_segmentor.py (reference notes §7).
# Published mIoU: 39.1 (paper) [mem]; 39.31 (independent re-run) (reference notes §7(c), §13).
_base_ = [
    '../_base_/models/proxyclip_harness.py',
    '../_base_/datasets/context59.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_context59.py (byte-identical to sclip/cls_context59.txt)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_context59.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_context59.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
