# ProxyCLIP (Lan et al., ECCV 2024), OpenCLIP ViT-H/14 (LAION-2B) with a DINO ViT-B/8 proxy, on
# PASCAL Context with background (PC60). Settings: mc-lan/ProxyCLIP configs/cfg_context60.py@e7b767f
# over base_config.py and the defaults of proxyclip_segmentor.py (reference notes §7). The CLIP is
# one of the three (tag, model) pairs base_config.py lists. Published mIoU: not recovered from the
# stored sources (the paper's ViT-H/14 row; avg 44.4 over the eight benchmarks: paper abstract).
_base_ = [
    '../_base_/models/proxyclip_harness.py',
    '../_base_/datasets/context60.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # ViT-H/14 as base_config.py's ('laion2b_s32b_b79k', 'ViT-H-14'): LAION-2B weights,
    # plain GELU (open_clip's ViT-H-14 config). Windows, padding to 56 (a multiple of
    # 14 and of DINO's 8), beta, gamma and the DINO ViT-B/8 proxy stay as for
    # ViT-B/16: the release sets none of them per backbone.
    backbone=dict(model='ViT-H-14', pretrained='laion2b_s32b_b79k'),
    # name_path of cfg_context60.py (byte-identical to sclip/cls_context60.txt)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_context60.txt'),
    prob_thd=0.15,  # cfg_context60.py: 0.15 OURS
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_context60.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
