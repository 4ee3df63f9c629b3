# MaskCLIP (Zhou, Loy, Dai, ECCV 2022), OpenAI CLIP ViT-B/16, on COCO-Stuff-164k (Stuff).
# Settings: chongzhou96/MaskCLIP configs/maskclip/maskclip_vit16_512x512_coco-stuff164k.py@245d31f
# (reference notes §2.3, §3).
# Published mIoU: 12.5 (own protocol, as here) [README]; 16.7 (SCLIP protocol) [2nd] (reference
# notes §13).
_base_ = [
    '../_base_/models/maskclip_harness.py',
    '../_base_/datasets/coco-stuff171.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        dense=dict(type='MaskCLIPAttention'),
        pretrained='openai',  # OpenAI ViT-B/16, converted by convert_clip_weights.py
        pos_interp='size'),  # bicubic to the target grid
    # prompt_engineering.py class list of coco-stuff171 (MaskCLIP's own names)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'maskclip/cls_coco_stuff.txt'),
    slide_crop=0,  # test_cfg mode='whole'
    logit_scale=40,  # irrelevant to the argmax (no temperature)
    prob_thd=0.0,  # argmax of the cosine
    area_thd=None,
    refiner=None,  # no PAMR; no key smoothing / prompt denoising
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # _base_/datasets/coco-stuff164k.py img_scale
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
