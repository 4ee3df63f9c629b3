# MaskCLIP (Zhou, Loy, Dai, ECCV 2022), OpenAI CLIP ViT-B/16, on PASCAL VOC 2012 with background
# (VOC21).
# Settings: no MaskCLIP config for this benchmark: MaskCLIP harness (chongzhou96/MaskCLIP@245d31f)
# with SCLIP's name file (background synonyms) and no threshold; our choice (reference notes §2.3,
# §3).
# Published mIoU: 43.4 (SCLIP protocol) [2nd] (reference notes §13).
_base_ = [
    '../_base_/models/maskclip_harness.py',
    '../_base_/datasets/voc21.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # SCLIP's name file: MaskCLIP has no background-class benchmark
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_voc21.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # MaskCLIP's VOC scale (_base_/datasets/pascal_voc12.py)
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
