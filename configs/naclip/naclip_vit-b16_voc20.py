# NACLIP (Hajimiri, Ben Ayed, Dolz, WACV 2025), OpenAI CLIP ViT-B/16, on PASCAL VOC 2012 without
# background (VOC20).
# Settings: sinahmr/NACLIP configs/cfg_voc20.py@0cac3a6 over the defaults of naclip.py (reference
# notes §2.2-§2.3).
# Published mIoU: 83.03 (with PAMR, as here) [README]; 79.7 (without PAMR) [2nd] (reference notes
# §13).
_base_ = [
    '../_base_/models/naclip_harness.py',
    '../_base_/datasets/voc20.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_voc20.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_voc20.txt'),
    slide_crop=0,  # whole image: cfg_voc20.py slide_crop=0
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_voc20.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
