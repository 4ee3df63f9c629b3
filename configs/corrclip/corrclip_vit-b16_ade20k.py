# CorrCLIP (Zhang et al., ICCV 2025), MetaCLIP ViT-B/16 with DINO ViT-B/8 correlations and SAM
# masks, on ADE20K-150 (ADE).
# Settings: zdk258/CorrCLIP CorrCLIPv1/configs/cfg_ade20k.py@103bc18 over
# base_config.py and the defaults of corrclip_segmentor.py (reference notes §12).
# Published mIoU: 26.9 (CorrCLIPv1/README.md@103bc18, ViT-B row SAM2_32).
_base_ = [
    '../_base_/models/corrclip_harness.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_ade20k.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'corrclip/cls_ade20k.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_ade20k.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
