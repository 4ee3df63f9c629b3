# ResCLIP (Yang et al., CVPR 2025) on NACLIP, OpenAI CLIP ViT-B/16, on Cityscapes.
# Settings: yvhangyang/ResCLIP configs/cfg_city_scapes.py@0e085f7 over base_config.py and the
# defaults of resclip_segmentor.py (reference notes §12).
# Published mIoU: 35.9 (README figs/main_results_wo.png, "NACLIP +ResCLIP"; no PAMR,
# as here)
_base_ = [
    '../_base_/models/resclip_harness.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(dense=dict(
        rcs_weights=(2.0, 0.2),  # cfg_city_scapes.py attn_rcs_weights
        sfr_weights=(2.1, 0.6))),  # cfg_city_scapes.py attn_sfr_weights
    patch_refiner=dict(temp_thd=0.10),  # cfg_city_scapes.py
    # name_path of cfg_city_scapes.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_city_scapes.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 560: cfg_city_scapes.py
    dict(type='Resize', scale=(2048, 560), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
