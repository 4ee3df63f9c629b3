# ProxyCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-B/16 with a DINO ViT-B/8 proxy, on Cityscapes
# (City).
# Settings: mc-lan/ProxyCLIP configs/cfg_city_scapes.py@e7b767f over base_config.py and the defaults
# of proxyclip_segmentor.py (reference notes §7).
# Published mIoU: 38.1 (paper) [2nd] (reference notes §7(c), §13).
_base_ = [
    '../_base_/models/proxyclip_harness.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
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
