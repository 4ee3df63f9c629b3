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
    # prompt_engineering.py class list of context59 (MaskCLIP's own names)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'maskclip/cls_context59.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # _base_/datasets/pascal_context_59.py img_scale
    dict(type='Resize', scale=(520, 520), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
