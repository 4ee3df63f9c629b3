# NACLIP (Hajimiri, Ben Ayed, Dolz, WACV 2025), OpenAI CLIP ViT-B/16, on PASCAL Context without
# background (PC59).
# Settings: sinahmr/NACLIP configs/cfg_context59.py@0cac3a6 over the defaults of naclip.py
# (reference notes §2.2-§2.3).
# Published mIoU: 38.35 (with PAMR, as here) [README]; 35.2 (without PAMR) [2nd] (reference notes
# §13).
_base_ = [
    '../_base_/models/naclip_harness.py',
    '../_base_/datasets/context59.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_context59.py (byte-identical to SCLIP's)
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
