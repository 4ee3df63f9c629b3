# ProxyCLIP (Lan et al., ECCV 2024), OpenCLIP ViT-H/14 (LAION-2B) with a DINO ViT-B/8 proxy, on
# PASCAL Context without background (PC59). Settings: mc-lan/ProxyCLIP
# configs/cfg_context59.py@e7b767f over base_config.py and the defaults of proxyclip_segmentor.py
# (reference notes §7). The CLIP is one of the three (tag, model) pairs base_config.py lists.
# Published mIoU: 39.6 (paper, ViT-H/14) [2nd] (avg 44.4 over the eight benchmarks: paper abstract).
_base_ = [
    '../_base_/models/proxyclip_harness.py',
    '../_base_/datasets/context59.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # ViT-H/14 as base_config.py's ('laion2b_s32b_b79k', 'ViT-H-14'): LAION-2B weights,
    # plain GELU (open_clip's ViT-H-14 config). Windows, padding to 56 (a multiple of
    # 14 and of DINO's 8), beta, gamma and the DINO ViT-B/8 proxy stay as for
    # ViT-B/16: the release sets none of them per backbone.
    backbone=dict(model='ViT-H-14', pretrained='laion2b_s32b_b79k'),
    # name_path of cfg_context59.py (byte-identical to sclip/cls_context59.txt)
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
