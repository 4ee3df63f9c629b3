# The ProxyCLIP harness (mc-lan/ProxyCLIP proxyclip_segmentor.py@e7b767f, ProxyCLIPSegmentation
# defaults with configs/base_config.py, vfm_model='dino'; reference notes §7): OpenAI ViT-B/16
# whose last block attends with the patch-feature similarities of DINO ViT-B/8 (beta 1.2,
# gamma 3.0; no residual, FFN, CLIP q/k or [CLS]), DINO-style position-embedding interpolation
# in both encoders, 80 ImageNet templates, 336/112 windows zero-padded (centred) to a multiple
# of 56, logit scale 40, synonyms split on '; ', no PAMR.
# Deviation: the reference runs CLIP and DINO in fp16 on CUDA; we run fp32. It reads the DINO
# grid as (H/8, H/8) and CLIP's as (W/16, H/16), which scrambles non-square windows (notes §16);
# we keep H and W apart. Windows are square unless an image side is shorter than the crop.
# S, the short side of the Python API and the demos (method='proxyclip'): ProxyCLIP's VOC/Context/Object configs: short side 336.
# Each benchmark config states its dataset's S in its test_pipeline.
short_side = 336
model = dict(
    type='OpenVocabSegmentor',
    backbone=dict(
        type='CLIPViT',
        model='ViT-B-16',
        pretrained='openai',  # create_model('ViT-B/16', pretrained='openai'): QuickGELU
        dense=dict(
            type='ProxyCLIPAttention',
            # torch.hub dino_vitb8; timm's vit_base_patch8_224.dino holds the same weights
            # (notes §16). Offline: pretrained='/path/to/model.safetensors' of that hub entry.
            proxy=dict(type='DINOProxy', model='vit_base_patch8_224.dino', pretrained='timm',
                       pos_interp='scale_factor'),  # dino interpolate_pos_encoding (+0.1)
            beta=1.2,  # ProxyCLIPSegmentation default
            gamma=3.0),  # ProxyCLIPSegmentation default
        pos_interp='scale_factor'),  # open_clip/transformer.py interpolate_pos_encoding (+0.1)
    vocabulary=None,  # each dataset config names its class-name file
    name_sep='; ',  # get_cls_idx splits lines on '; '
    templates='openai_imagenet',  # prompts/imagenet_template.py openai_imagenet_template
    logit_scale=40.0,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=336,
    slide_stride=112,
    pad_to_patch=True,  # forward_slide: compute_padsize(H, W, 56)
    pad_multiple=56,
    refiner=None)
