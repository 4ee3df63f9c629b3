# SC-CLIP (Bai et al., arXiv 2411.15869), OpenAI CLIP ViT-B/16, on Cityscapes (City).
# Settings: SuleBai/SC-CLIP configs/cfg_city_scapes.py@0417ba9 over base_config.py and the
# defaults of scclip_segmentor.py (reference notes §12).
# Published mIoU: 41.0 [2nd] (reference notes §12).
_base_ = [
    '../_base_/models/scclip_harness.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_city_scapes.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_city_scapes.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 560: cfg_city_scapes.py
    dict(type='Resize', scale=(2048, 560), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
