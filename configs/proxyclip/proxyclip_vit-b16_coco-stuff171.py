# ProxyCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-B/16 with a DINO ViT-B/8 proxy, on
# COCO-Stuff-164k (Stuff).
# Settings: mc-lan/ProxyCLIP configs/cfg_coco_stuff164k.py@e7b767f over base_config.py and the
# defaults of proxyclip_segmentor.py (reference notes §7).
# Published mIoU: 26.5 (paper) [mem]; 26.68 (independent re-run) (reference notes §7(c), §13).
_base_ = [
    '../_base_/models/proxyclip_harness.py',
    '../_base_/datasets/coco-stuff171.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_coco_stuff164k.py (byte-identical to sclip/cls_coco_stuff.txt)
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
