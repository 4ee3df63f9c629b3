# Trident (Shi, Dong, Xu, ICCV 2025), OpenAI CLIP ViT-B/16 with DINO ViT-B/16 and SAM ViT-B, on
# PASCAL Context without background (PC59).
# Settings: YuHengsss/Trident configs/cfg_context59.py@a93b346 over base_config.py and the
# defaults of trident.py (reference notes §12). SAM prompt refinement stays off, as in
# base_config.py; the released eval commands (README, dist_test.sh) pass --sam_refine:
# --cfg-options model.sam_refinement=True for that setting.
# Published mIoU: 42.2 (paper; README assets/data_result.png@a93b346) [2nd: notes §12].
_base_ = [
    '../_base_/models/trident_harness.py',
    '../_base_/datasets/context59.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_context59.py (byte-identical to sclip/cls_context59.txt)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_context59.txt'),
    coarse_thresh=0.15,  # cfg_context59.py (read only with sam_refinement=True)
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 576: cfg_context59.py
    dict(type='Resize', scale=(2048, 576), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
