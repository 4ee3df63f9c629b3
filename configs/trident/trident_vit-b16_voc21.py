# Trident (Shi, Dong, Xu, ICCV 2025), OpenAI CLIP ViT-B/16 with DINO ViT-B/16 and SAM ViT-B, on
# PASCAL VOC 2012 with background (VOC21).
# Settings: YuHengsss/Trident configs/cfg_voc21.py@a93b346 over base_config.py and the
# defaults of trident.py (reference notes §12). SAM prompt refinement stays off, as in
# base_config.py; the released eval commands (README, dist_test.sh) pass --sam_refine:
# --cfg-options model.sam_refinement=True for that setting.
# Published mIoU: 67.1 (paper; README assets/data_result.png@a93b346) [2nd: notes §12].
_base_ = [
    '../_base_/models/trident_harness.py',
    '../_base_/datasets/voc21.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_voc21.py (byte-identical to proxyclip/cls_voc21.txt)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'proxyclip/cls_voc21.txt'),
    prob_thd=0.2,  # cfg_voc21.py
    # coarse_thresh: the harness's 0.2 (cfg_voc21.py's too)
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_voc21.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
