# CorrCLIP (Zhang et al., ICCV 2025), MetaCLIP ViT-B/16 with DINO ViT-B/8 correlations and SAM
# masks, on Cityscapes (City).
# Settings: zdk258/CorrCLIP CorrCLIPv1/configs/cfg_city_scapes.py@103bc18 over
# base_config.py and the defaults of corrclip_segmentor.py (reference notes §12).
# Published mIoU: 49.4 (CorrCLIPv1/README.md@103bc18, ViT-B row SAM2_32).
_base_ = [
    '../_base_/models/corrclip_harness.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_city_scapes.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'corrclip/cls_city_scapes.txt'),
    slide_crop=224,  # cfg_city_scapes.py (its slide_stride=112 is the harness's)
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_city_scapes.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
