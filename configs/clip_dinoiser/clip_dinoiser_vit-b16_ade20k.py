# CLIP-DINOiser (Wysoczańska et al., ECCV 2024), OpenCLIP ViT-B/16 (LAION-2B) with the released
# heads, on ADE20K-150 (ADE).
# Settings: wysoczanska/clip_dinoiser main_eval.py@a954aae, task 'ade20k':
# segmentation/configs/_base_/datasets/ade20k.py with configs/clip_dinoiser.yaml (reference notes
# §9).
# Published mIoU: 20.0 (paper) [mem]; 20.0 [2nd: FLOSS README] (reference notes §9(c), §13).
_base_ = [
    '../_base_/models/clip_dinoiser_harness.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # ADE20KDataset.CLASSES of mmseg 0.27 (equal to MaskCLIP's file)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'maskclip/cls_ade20k.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: ade20k.py img_scale=(2048, 448)
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
