# ResCLIP (Yang et al., CVPR 2025) on NACLIP, OpenAI CLIP ViT-B/16, on PASCAL Context without
# background (PC59).
# Settings: yvhangyang/ResCLIP configs/cfg_context59.py@0e085f7 over base_config.py and the
# defaults of resclip_segmentor.py (reference notes §12).
# Published mIoU: 36.8 (README figs/main_results_wo.png, "NACLIP +ResCLIP"; no PAMR,
# as here)
_base_ = [
    '../_base_/models/resclip_harness.py',
    '../_base_/datasets/context59.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(dense=dict(
        rcs_weights=(2.0, 0.4),  # cfg_context59.py attn_rcs_weights
        sfr_weights=(1.8, 0.7))),  # cfg_context59.py attn_sfr_weights
    # temp_thd: the harness's (cfg_context59.py's value)
    # name_path of cfg_context59.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_context59.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_context59.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
