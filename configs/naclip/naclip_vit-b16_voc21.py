# NACLIP (Hajimiri, Ben Ayed, Dolz, WACV 2025), OpenAI CLIP ViT-B/16, on PASCAL VOC 2012 with
# background (VOC21).
# Settings: sinahmr/NACLIP configs/cfg_voc21.py@0cac3a6 over the defaults of naclip.py (reference
# notes §2.2-§2.3).
# Published mIoU: 64.07 (with PAMR, as here) [README]; 58.9 (without PAMR) [2nd] (reference notes
# §13).
_base_ = [
    '../_base_/models/naclip_harness.py',
    '../_base_/datasets/voc21.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_voc21.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_voc21.txt'),
    slide_crop=0,  # whole image: cfg_voc21.py slide_crop=0
    prob_thd=0.1,  # cfg_voc21.py
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_voc21.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
