# CorrCLIP (Zhang et al., ICCV 2025), MetaCLIP ViT-B/16 with DINO ViT-B/8 correlations and SAM
# masks, on COCO-Stuff-164k (Stuff).
# Settings: zdk258/CorrCLIP CorrCLIPv1/configs/cfg_coco_stuff164k.py@103bc18 over
# base_config.py and the defaults of corrclip_segmentor.py (reference notes §12).
# Published mIoU: 31.6 (CorrCLIPv1/README.md@103bc18, ViT-B row SAM2_32).
_base_ = [
    '../_base_/models/corrclip_harness.py',
    '../_base_/datasets/coco-stuff171.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_coco_stuff164k.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'corrclip/cls_coco_stuff.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_coco_stuff164k.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
