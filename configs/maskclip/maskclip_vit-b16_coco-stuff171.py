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
    # prompt_engineering.py class list of coco-stuff171 (MaskCLIP's own names)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'maskclip/cls_coco_stuff.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # _base_/datasets/coco-stuff164k.py img_scale
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
