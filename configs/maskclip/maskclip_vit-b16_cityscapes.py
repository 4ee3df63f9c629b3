# MaskCLIP (Zhou, Loy, Dai, ECCV 2022), OpenAI CLIP ViT-B/16, on Cityscapes (City).
# Settings: chongzhou96/MaskCLIP configs/maskclip/maskclip_vit16_1024x512_cityscapes.py@245d31f
# (reference notes §2.3, §3).
# Published mIoU: 24.9 (SCLIP protocol) [2nd] (reference notes §13).
_base_ = [
    '../_base_/models/maskclip_harness.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # prompt_engineering.py class list of cityscapes (MaskCLIP's own names)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'maskclip/cls_city_scapes.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # maskclip_vit16_1024x512_cityscapes.py img_scale
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
