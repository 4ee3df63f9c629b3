# CorrCLIP (Zhang et al., ICCV 2025), MetaCLIP ViT-B/16 with DINO ViT-B/8 correlations and SAM
# masks, on PASCAL VOC 2012 with background (VOC21).
# Settings: zdk258/CorrCLIP CorrCLIPv1/configs/cfg_voc21.py@103bc18 over
# base_config.py and the defaults of corrclip_segmentor.py (reference notes §12).
# Published mIoU: 74.8 (CorrCLIPv1/README.md@103bc18, ViT-B row SAM2_32).
_base_ = [
    '../_base_/models/corrclip_harness.py',
    '../_base_/datasets/voc21.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_voc21.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'corrclip/cls_voc21.txt'),
    prob_thd=0.2,  # cfg_voc21.py
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_voc21.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
