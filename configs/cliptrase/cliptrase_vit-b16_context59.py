# CLIPtrase (Shao, Tian, Zhao, Su, ECCV 2024), OpenAI CLIP ViT-B/16, on PASCAL Context without
# background (PC59).
# Settings: leaves162/CLIPtrase clip_self_correlation.py@2b7de61 self_clip('PC59', image_size=224,
# eps=0.7, min=3) with configs/dataset_cfg.py (reference notes §8).
# Published mIoU: 33.83 (224, as here) / 34.92 (336) [README], both scored on the central square
# crop, not the whole image (reference notes §8(c)).
_base_ = [
    '../_base_/models/cliptrase_harness.py',
    '../_base_/datasets/context59.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # dataset_info['PC59'] labels
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'cliptrase/cls_context59.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 224: self_clip image_size=224 (Resize(224), then CenterCrop(224), which we skip)
    dict(type='Resize', scale=(2048, 224), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
