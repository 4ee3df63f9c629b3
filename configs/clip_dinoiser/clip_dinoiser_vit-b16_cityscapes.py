# CLIP-DINOiser (Wysoczańska et al., ECCV 2024), OpenCLIP ViT-B/16 (LAION-2B) with the released
# heads, on Cityscapes (City).
# Settings: wysoczanska/clip_dinoiser main_eval.py@a954aae, task 'cityscapes':
# segmentation/configs/_base_/datasets/cityscapes.py with configs/clip_dinoiser.yaml (reference
# notes §9).
# Published mIoU: 31.7 (paper) [mem]; 31.1 [2nd: FLOSS README] (reference notes §9(c), §13).
_base_ = [
    '../_base_/models/clip_dinoiser_harness.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # CityscapesDataset.CLASSES of mmseg 0.27 (equal to MaskCLIP's file)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'maskclip/cls_city_scapes.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cityscapes.py img_scale=(2048, 448)
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
