# SC-CLIP (Bai et al., arXiv 2411.15869), OpenAI CLIP ViT-B/16, on PASCAL VOC 2012 without
# background (VOC20).
# Settings: SuleBai/SC-CLIP configs/cfg_voc20.py@0417ba9 over base_config.py and the
# defaults of scclip_segmentor.py (reference notes §12).
# Published mIoU: 84.3 [2nd] (reference notes §12).
_base_ = [
    '../_base_/models/scclip_harness.py',
    '../_base_/datasets/voc20.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_voc20.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_voc20.txt'),
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_voc20.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
