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
    backbone=dict(
        dense=dict(type='NACLIPAttention', sigma=5.0),  # gaussian_std=5
        pretrained='openai',  # clip.load('ViT-B/16')
        pos_interp='scale_factor'),  # interpolate_pos_encoding (+0.1)
    # name_path of cfg_coco_stuff164k.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_coco_stuff.txt'),
    slide_crop=224,  # naclip.py default
    slide_stride=112,  # naclip.py default
    logit_scale=40,  # naclip.py default
    prob_thd=0.0,  # naclip.py default
    area_thd=None,
    # PAMR on: test_all.sh `... on` sets pamr_steps=10; naclip.py pamr_stride
    refiner=dict(type='PAMRRefiner', num_iter=10, dilations=(8, 16)),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_coco_stuff164k.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
