# Trident (Shi, Dong, Xu, ICCV 2025), OpenAI CLIP ViT-B/16 with DINO ViT-B/16 and SAM ViT-B, on
# Cityscapes (City).
# Settings: YuHengsss/Trident configs/cfg_city_scapes.py@a93b346 over base_config.py and the
# defaults of trident.py (reference notes §12). SAM prompt refinement stays off, as in
# base_config.py; the released eval commands (README, dist_test.sh) pass --sam_refine:
# --cfg-options model.sam_refinement=True for that setting.
# Published mIoU: 42.9 (paper; README assets/data_result.png@a93b346) [2nd: notes §12].
_base_ = [
    '../_base_/models/trident_harness.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_city_scapes.py (byte-identical to sclip/cls_city_scapes.txt)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_city_scapes.txt'),
    cos_fac=3.0,  # cfg_city_scapes.py
    refine_neg_cos=False,  # cfg_city_scapes.py
    # cfg_city_scapes.py dataset_type='CityscapesDataset': trident.py get_trident_seg's
    # "special cases for cityscapes" runs SAM on the left and right halves
    sam_splits=2,
    coarse_thresh=0.10,  # cfg_city_scapes.py (read only with sam_refinement=True)
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 688: cfg_city_scapes.py
    dict(type='Resize', scale=(2048, 688), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
