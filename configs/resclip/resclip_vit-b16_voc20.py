# ResCLIP (Yang et al., CVPR 2025) on NACLIP, OpenAI CLIP ViT-B/16, on PASCAL VOC 2012 without
# background (VOC20).
# Settings: yvhangyang/ResCLIP configs/cfg_voc20.py@0e085f7 over base_config.py and the
# defaults of resclip_segmentor.py (reference notes §12).
# Published mIoU: 86.0 (README figs/main_results_wo.png, "NACLIP +ResCLIP"; no PAMR,
# as here)
_base_ = [
    '../_base_/models/resclip_harness.py',
    '../_base_/datasets/voc20.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(dense=dict(
        rcs_weights=(2.0, 0.6),  # cfg_voc20.py attn_rcs_weights
        sfr_weights=(2.1, 0.6))),  # cfg_voc20.py attn_sfr_weights
    patch_refiner=dict(temp_thd=0.10),  # cfg_voc20.py
    # name_path of cfg_voc20.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_voc20.txt'),
    slide_crop=0,  # whole image: cfg_voc20.py slide_crop=0
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_voc20.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
