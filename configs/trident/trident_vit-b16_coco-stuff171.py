# Trident (Shi, Dong, Xu, ICCV 2025), OpenAI CLIP ViT-B/16 with DINO ViT-B/16 and SAM ViT-B, on
# COCO-Stuff-164k (Stuff).
# Settings: YuHengsss/Trident configs/cfg_coco_stuff164k.py@a93b346 over base_config.py and the
# defaults of trident.py (reference notes §12). SAM prompt refinement stays off, as in
# base_config.py; the released eval commands (README, dist_test.sh) pass --sam_refine:
# --cfg-options model.sam_refinement=True for that setting.
# Published mIoU: 28.3 (paper; README assets/data_result.png@a93b346) [2nd: notes §12].
_base_ = [
    '../_base_/models/trident_harness.py',
    '../_base_/datasets/coco-stuff171.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_coco_stuff164k.py (byte-identical to sclip/cls_coco_stuff.txt)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_coco_stuff.txt'),
    coarse_thresh=0.05,  # cfg_coco_stuff164k.py (read only with sam_refinement=True)
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_coco_stuff164k.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
