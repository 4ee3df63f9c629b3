# ProxyCLIP (Lan et al., ECCV 2024), OpenAI CLIP ViT-B/16 with a DINO ViT-B/8 proxy, on Cityscapes
# (City).
# Settings: mc-lan/ProxyCLIP configs/cfg_city_scapes.py@e7b767f over base_config.py and the defaults
# of proxyclip_segmentor.py (reference notes §7).
# Published mIoU: 38.1 (paper) [2nd] (reference notes §7(c), §13).
_base_ = [
    '../_base_/models/proxyclip_harness.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        dense=dict(
            type='ProxyCLIPAttention',
            # vfm_model='dino': torch.hub dino_vitb8
            proxy=dict(type='DINOProxy', model='vit_base_patch8_224.dino', pretrained='timm',
                       pos_interp='scale_factor'),
            beta=1.2,  # ProxyCLIPSegmentation default
            gamma=3.0),  # ProxyCLIPSegmentation default
        pretrained='openai',  # create_model('ViT-B/16', pretrained='openai')
        pos_interp='scale_factor'),  # interpolate_pos_encoding (+0.1)
    # name_path of cfg_city_scapes.py (byte-identical to sclip/cls_city_scapes.txt)
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'sclip/cls_city_scapes.txt'),
    slide_crop=224,  # cfg_city_scapes.py
    slide_stride=112,  # cfg_city_scapes.py
    pad_to_patch=True,  # compute_padsize(H, W, 56)
    pad_multiple=56,
    logit_scale=40,  # ProxyCLIPSegmentation default
    prob_thd=0.0,  # ProxyCLIPSegmentation default
    area_thd=None,
    refiner=None,  # no PAMR in ProxyCLIP
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: cfg_city_scapes.py
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
