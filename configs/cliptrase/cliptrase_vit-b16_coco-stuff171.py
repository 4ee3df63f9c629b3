# CLIPtrase (Shao, Tian, Zhao, Su, ECCV 2024), OpenAI CLIP ViT-B/16, on COCO-Stuff-164k (Stuff).
# Settings: leaves162/CLIPtrase clip_self_correlation.py@2b7de61 self_clip('COCO171_val',
# image_size=224, eps=0.7, min=3) with configs/dataset_cfg.py (reference notes §8).
# Published mIoU: 22.84 (224, as here) / 24.06 (336) [README], both scored on the central square
# crop, not the whole image (reference notes §8(c)).
_base_ = [
    '../_base_/models/cliptrase_harness.py',
    '../_base_/datasets/coco-stuff171.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # dataset_info['COCO171_val'] labels (equal to CLIP-DINOiser's file)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'clip_dinoiser/cls_coco_stuff.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 224: self_clip image_size=224 (Resize(224), then CenterCrop(224), which we skip)
    dict(type='Resize', scale=(2048, 224), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
