# ProxyCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-B/16 with a DINO ViT-B/8 proxy, on ADE20K-150
# (ADE).
# Settings: mc-lan/ProxyCLIP configs/cfg_ade20k.py@e7b767f over base_config.py and the defaults of
# proxyclip_segmentor.py (reference notes §7).
# Published mIoU: 20.2 (paper) [2nd] (reference notes §7(c), §13).
_base_ = [
    '../_base_/models/proxyclip_harness.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_ade20k.py (byte-identical to sclip/cls_ade20k.txt)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_ade20k.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_ade20k.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
