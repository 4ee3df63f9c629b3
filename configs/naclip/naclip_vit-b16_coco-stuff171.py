# NACLIP (Hajimiri, Ben Ayed, Dolz, WACV 2025), OpenAI CLIP ViT-B/16, on COCO-Stuff-164k (Stuff).
# Settings: sinahmr/NACLIP configs/cfg_coco_stuff164k.py@0cac3a6 over the defaults of naclip.py
# (reference notes §2.2-§2.3).
# Published mIoU: 25.69 (with PAMR, as here) [README]; 23.3 (without PAMR) [2nd] (reference notes
# §13).
_base_ = [
    '../_base_/models/naclip_harness.py',
    '../_base_/datasets/coco-stuff171.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_coco_stuff164k.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_coco_stuff.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_coco_stuff164k.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
