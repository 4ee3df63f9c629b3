# SC-CLIP (Bai et al., arXiv 2411.15869), OpenAI CLIP ViT-B/16, on COCO-Object (Object).
# Settings: SuleBai/SC-CLIP configs/cfg_coco_object.py@0417ba9 over base_config.py and the
# defaults of scclip_segmentor.py (reference notes §12).
# Published mIoU: 37.7 [2nd] (reference notes §12).
_base_ = [
    '../_base_/models/scclip_harness.py',
    '../_base_/datasets/coco-object.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_coco_object.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_coco_object.txt'),
    logit_scale=55,  # cfg_coco_object.py
    prob_thd=0.35,  # cfg_coco_object.py
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_coco_object.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
