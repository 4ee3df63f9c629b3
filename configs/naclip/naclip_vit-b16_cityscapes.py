# NACLIP (Hajimiri, Ben Ayed, Dolz, WACV 2025), OpenAI CLIP ViT-B/16, on Cityscapes (City).
# Settings: sinahmr/NACLIP configs/cfg_city_scapes.py@0cac3a6 over the defaults of naclip.py
# (reference notes §2.2-§2.3).
# Published mIoU: 38.27 (with PAMR, as here) [README]; 35.5 (without PAMR) [2nd] (reference notes
# §13).
_base_ = [
    '../_base_/models/naclip_harness.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_city_scapes.py (byte-identical to SCLIP's)
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
