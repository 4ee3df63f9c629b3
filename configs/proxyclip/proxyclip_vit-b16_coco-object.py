# ProxyCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-B/16 with a DINO ViT-B/8 proxy, on COCO-Object
# (Object).
# Settings: mc-lan/ProxyCLIP configs/cfg_coco_object.py@e7b767f over base_config.py and the defaults
# of proxyclip_segmentor.py (reference notes §7).
# Published mIoU: 37.5 (paper) [2nd] (reference notes §7(c), §13).
_base_ = [
    '../_base_/models/proxyclip_harness.py',
    '../_base_/datasets/coco-object.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_coco_object.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'proxyclip/cls_coco_object.txt'),
    prob_thd=0.25,  # cfg_coco_object.py: 0.25 OURS
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_coco_object.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
