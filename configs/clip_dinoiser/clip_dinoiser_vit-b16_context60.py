# CLIP-DINOiser (Wysoczańska et al., ECCV 2024), OpenCLIP ViT-B/16 (LAION-2B) with the released
# heads, on PASCAL Context with background (PC60).
# Settings: wysoczanska/clip_dinoiser main_eval.py@a954aae, task 'context':
# segmentation/configs/_base_/datasets/pascal_context.py with configs/clip_dinoiser.yaml (reference
# notes §9).
# Published mIoU: 32.4 (paper) [mem] (reference notes §9(c), §13).
_base_ = [
    '../_base_/models/clip_dinoiser_harness.py',
    '../_base_/datasets/context60.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # PascalContextDataset.CLASSES of segmentation/datasets/pascal_context.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'clip_dinoiser/cls_context60.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: pascal_context.py img_scale=(2048, 448)
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
