# ResCLIP (Yang et al., CVPR 2025) on NACLIP, OpenAI CLIP ViT-B/16, on PASCAL VOC 2012 with
# background (VOC21).
# Settings: yvhangyang/ResCLIP configs/cfg_voc21.py@0e085f7 over base_config.py and the
# defaults of resclip_segmentor.py (reference notes §12).
# Published mIoU: 61.1 (README figs/main_results_w.png, "NACLIP +ResCLIP"; no PAMR,
# as here)
_base_ = [
    '../_base_/models/resclip_harness.py',
    '../_base_/datasets/voc21.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(dense=dict(sfr_weights=(2.2, 0.7))),  # cfg_voc21.py attn_sfr_weights
    patch_refiner=dict(temp_thd=0.50),  # cfg_voc21.py
    # attn_rcs_weights: the harness's (cfg_voc21.py's value)
    # name_path of cfg_voc21.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_voc21.txt'),
    slide_crop=0,  # whole image: cfg_voc21.py slide_crop=0
    prob_thd=0.1,  # cfg_voc21.py
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_voc21.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
