# ProxyCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-L/14 with a DINO ViT-B/8 proxy, on Cityscapes
# (City). Settings: mc-lan/ProxyCLIP configs/cfg_city_scapes.py@e7b767f over base_config.py and the
# defaults of proxyclip_segmentor.py (reference notes §7). The CLIP is one of the three (tag, model)
# pairs base_config.py lists. Published mIoU: not recovered from the stored sources (the paper's
# ViT-L/14 row, reference notes §15).
_base_ = [
    '../_base_/models/proxyclip_harness.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # ViT-L/14 as base_config.py's ('openai', 'ViT-L-14'): 224-pixel OpenAI weights;
    # the `openai` tag loads with QuickGELU. Windows, padding to 56 (a multiple of 14
    # and of DINO's 8), beta, gamma and the DINO ViT-B/8 proxy stay as for ViT-B/16:
    # the release sets none of them per backbone.
    backbone=dict(model='ViT-L-14', pretrained='openai'),
    # name_path of cfg_city_scapes.py (byte-identical to sclip/cls_city_scapes.txt)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_city_scapes.txt'),
    slide_crop=224,  # cfg_city_scapes.py
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_city_scapes.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
