# CLIP-DINOiser (Wysoczańska et al., ECCV 2024), OpenCLIP ViT-B/16 (LAION-2B) with the released
# heads, on PASCAL VOC 2012 with background (VOC21).
# Settings: wysoczanska/clip_dinoiser main_eval.py@a954aae, task 'voc':
# segmentation/configs/_base_/datasets/pascal_voc12.py with configs/clip_dinoiser.yaml (reference
# notes §9).
# Published mIoU: 62.1 (paper) [mem] (reference notes §9(c), §13).
_base_ = [
    '../_base_/models/clip_dinoiser_harness.py',
    '../_base_/datasets/voc21.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # PascalVOCDataset.CLASSES of segmentation/datasets/pascal_voc.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'clip_dinoiser/cls_voc21.txt'),
    feature_refiner=dict(
        apply_found=True),  # main_eval.py: apply_found for 'voc' and 'coco_object'
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: pascal_voc12.py img_scale=(2048, 448)
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
