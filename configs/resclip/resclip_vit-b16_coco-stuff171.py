# ResCLIP (Yang et al., CVPR 2025) on NACLIP, OpenAI CLIP ViT-B/16, on COCO-Stuff 164k (171 classes).
# Settings: yvhangyang/ResCLIP configs/cfg_coco_stuff164k.py@0e085f7 over base_config.py and the
# defaults of resclip_segmentor.py (reference notes §12).
# Published mIoU: 24.7 (README figs/main_results_wo.png, "NACLIP +ResCLIP"; no PAMR,
# as here)
_base_ = [
    '../_base_/models/resclip_harness.py',
    '../_base_/datasets/coco-stuff171.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(dense=dict(
        rcs_weights=(2.0, 0.4),  # cfg_coco_stuff164k.py attn_rcs_weights
        sfr_weights=(1.8, 0.7))),  # cfg_coco_stuff164k.py attn_sfr_weights
    patch_refiner=dict(temp_thd=0.11),  # cfg_coco_stuff164k.py
    # name_path of cfg_coco_stuff164k.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_coco_stuff.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_coco_stuff164k.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
