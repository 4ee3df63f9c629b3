# CLIP-DINOiser (Wysoczańska et al., ECCV 2024), OpenCLIP ViT-B/16 (LAION-2B) with the released
# heads, on COCO-Stuff-164k (Stuff).
# Settings: wysoczanska/clip_dinoiser main_eval.py@a954aae, task 'coco_stuff':
# segmentation/configs/_base_/datasets/stuff.py with configs/clip_dinoiser.yaml (reference notes
# §9).
# Published mIoU: 24.6 (paper) [mem]; 24.6 [2nd: FLOSS README] (reference notes §9(c), §13).
_base_ = [
    '../_base_/models/clip_dinoiser_harness.py',
    '../_base_/datasets/coco-stuff171.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # COCOStuffDataset.CLASSES of segmentation/datasets/coco_stuff.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'clip_dinoiser/cls_coco_stuff.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: stuff.py img_scale=(2048, 448)
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
