# Trident (Shi, Dong, Xu, ICCV 2025), OpenAI CLIP ViT-B/16 with DINO ViT-B/16 and SAM ViT-B, on
# COCO-Object.
# Settings: YuHengsss/Trident configs/cfg_coco_object.py@a93b346 over base_config.py and the
# defaults of trident.py (reference notes §12). SAM prompt refinement stays off, as in
# base_config.py; the released eval commands (README, dist_test.sh) pass --sam_refine:
# --cfg-options model.sam_refinement=True for that setting.
# Published mIoU: 41.1 (paper; README assets/data_result.png@a93b346) [2nd: notes §12].
_base_ = [
    '../_base_/models/trident_harness.py',
    '../_base_/datasets/coco-object.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_coco_object.py (byte-identical to proxyclip/cls_coco_object.txt)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'proxyclip/cls_coco_object.txt'),
    prob_thd=0.25,  # cfg_coco_object.py
    coarse_thresh=0.25,  # cfg_coco_object.py (read only with sam_refinement=True)
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_coco_object.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
