# SC-CLIP (Bai et al., arXiv 2411.15869), OpenAI CLIP ViT-B/16, on PASCAL VOC 2012 with background
# (VOC21).
# Settings: SuleBai/SC-CLIP configs/cfg_voc21.py@0417ba9 over base_config.py and the
# defaults of scclip_segmentor.py (reference notes §12).
# Published mIoU: 64.6 [2nd] (reference notes §12).
_base_ = [
    '../_base_/models/scclip_harness.py',
    '../_base_/datasets/voc21.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # name_path of cfg_voc21.py (byte-identical to SCLIP's)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_voc21.txt'),
    area_thd=0.1,  # cfg_voc21.py
    logit_scale=50,  # cfg_voc21.py
    prob_thd=0.15,  # cfg_voc21.py
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 336: cfg_voc21.py
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
