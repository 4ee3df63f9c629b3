# CorrCLIP (Zhang et al., ICCV 2025), MetaCLIP ViT-B/16 with DINO ViT-B/8 correlations and SAM
# masks, on PASCAL Context with background (PC60).
# Settings: zdk258/CorrCLIP CorrCLIPv1/configs/cfg_context60.py@103bc18 over
# base_config.py and the defaults of corrclip_segmentor.py (reference notes §12).
# Published mIoU: 44.2 (CorrCLIPv1/README.md@103bc18, ViT-B row SAM2_32).
_base_ = [
    '../_base_/models/corrclip_harness.py',
    '../_base_/datasets/context60.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_context60.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'corrclip/cls_context60.txt'),
    prob_thd=0.15,  # cfg_context60.py
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_context60.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
