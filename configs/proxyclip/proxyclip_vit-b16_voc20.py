# ProxyCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-B/16 with a DINO ViT-B/8 proxy, on PASCAL VOC
# 2012 without background (VOC20).
# Settings: mc-lan/ProxyCLIP configs/cfg_voc20.py@e7b767f over base_config.py and the defaults of
# proxyclip_segmentor.py (reference notes §7).
# Published mIoU: 80.3 (paper) [mem]; 80.33 (independent re-run) (reference notes §7(c), §13).
_base_ = [
    '../_base_/models/proxyclip_harness.py',
    '../_base_/datasets/voc20.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_voc20.py (byte-identical to clearclip/cls_voc20.txt)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'clearclip/cls_voc20.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_voc20.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
