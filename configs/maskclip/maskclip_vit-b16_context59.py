# MaskCLIP (Zhou, Loy, Dai, ECCV 2022), OpenAI CLIP ViT-B/16, on PASCAL Context without background
# (PC59).
# Settings: chongzhou96/MaskCLIP
# configs/maskclip/maskclip_vit16_520x520_pascal_context_59.py@245d31f (reference notes §2.3, §3).
# Published mIoU: 21.7 (own protocol, as here) [README]; 26.4 (SCLIP protocol) [2nd] (reference
# notes §13).
_base_ = [
    '../_base_/models/maskclip_harness.py',
    '../_base_/datasets/context59.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        dense=dict(type='MaskCLIPAttention'),
        pretrained='openai',  # OpenAI ViT-B/16, converted by convert_clip_weights.py
        pos_interp='size'),  # bicubic to the target grid
    # prompt_engineering.py class list of context59 (MaskCLIP's own names)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'maskclip/cls_context59.txt'),
    slide_crop=0,  # test_cfg mode='whole'
    logit_scale=40,  # irrelevant to the argmax (no temperature)
    prob_thd=0.0,  # argmax of the cosine
    area_thd=None,
    refiner=None,  # no PAMR; no key smoothing / prompt denoising
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # _base_/datasets/pascal_context_59.py img_scale
    dict(type='Resize', scale=(520, 520), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
