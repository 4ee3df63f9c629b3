# CLIP-DINOiser (Wysoczańska et al., ECCV 2024), OpenCLIP ViT-B/16 (LAION-2B) with the released
# heads, on COCO-Object (Object).
# Settings: wysoczanska/clip_dinoiser main_eval.py@a954aae, task 'coco_object':
# segmentation/configs/_base_/datasets/coco.py with configs/clip_dinoiser.yaml (reference notes §9).
# Published mIoU: 34.8 (paper) [mem] (reference notes §9(c), §13).
_base_ = [
    '../_base_/models/clip_dinoiser_harness.py',
    '../_base_/datasets/coco-object.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # COCOObjectDataset.CLASSES of segmentation/datasets/coco_object.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'clip_dinoiser/cls_coco_object.txt'),
    feature_refiner=dict(
        apply_found=True),  # main_eval.py: apply_found for 'voc' and 'coco_object'
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: coco.py img_scale=(2048, 448)
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
