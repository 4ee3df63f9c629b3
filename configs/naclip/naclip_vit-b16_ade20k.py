# NACLIP (Hajimiri, Ben Ayed, Dolz, WACV 2025), OpenAI CLIP ViT-B/16, on ADE20K-150 (ADE).
# Settings: sinahmr/NACLIP configs/cfg_ade20k.py@0cac3a6 over the defaults of naclip.py (reference
# notes §2.2-§2.3).
# Published mIoU: 19.05 (with PAMR, as here) [README]; 17.4 (without PAMR) [2nd] (reference notes
# §13).
_base_ = [
    '../_base_/models/naclip_harness.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_ade20k.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_ade20k.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_ade20k.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
