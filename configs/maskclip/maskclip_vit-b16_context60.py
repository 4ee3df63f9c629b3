# MaskCLIP (Zhou, Loy, Dai, ECCV 2022), OpenAI CLIP ViT-B/16, on PASCAL Context with background
# (PC60).
# Settings: no MaskCLIP config for this benchmark: MaskCLIP harness (chongzhou96/MaskCLIP@245d31f)
# with SCLIP's name file (background synonyms) and no threshold; our choice (reference notes §2.3,
# §3).
# Published mIoU: 23.2 (SCLIP protocol) [2nd] (reference notes §13).
_base_ = [
    '../_base_/models/maskclip_harness.py',
    '../_base_/datasets/context60.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # SCLIP's name file: MaskCLIP has no background-class benchmark
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_context60.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # MaskCLIP's Context scale (_base_/datasets/pascal_context.py)
    dict(type='Resize', scale=(520, 520), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
