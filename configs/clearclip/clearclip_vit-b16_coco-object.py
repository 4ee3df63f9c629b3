# ClearCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-B/16, on COCO-Object (Object).
# Settings: mc-lan/ClearCLIP configs/cfg_coco_object.py@ad68a40 over the defaults of
# clearclip_segmentor.py (reference notes §2.2-§2.3).
# Published mIoU: 33.0 (paper) [2nd] (reference notes §13).
_base_ = [
    '../_base_/models/clearclip_harness.py',
    '../_base_/datasets/coco-object.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_coco_object.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'clearclip/cls_coco_object.txt'),
    prob_thd=0.4,  # cfg_coco_object.py
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_coco_object.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
