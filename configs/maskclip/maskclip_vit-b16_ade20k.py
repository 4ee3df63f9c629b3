# MaskCLIP (Zhou, Loy, Dai, ECCV 2022), OpenAI CLIP ViT-B/16, on ADE20K-150 (ADE).
# Settings: chongzhou96/MaskCLIP configs/maskclip/maskclip_r50_512x512_ade20k.py (no ViT-B/16 ADE
# config)@245d31f (reference notes §2.3, §3).
# Published mIoU: 11.9 (SCLIP protocol) [2nd] (reference notes §13).
_base_ = [
    '../_base_/models/maskclip_harness.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # prompt_engineering.py class list of ade20k (MaskCLIP's own names)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'maskclip/cls_ade20k.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # _base_/datasets/ade20k.py img_scale
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
