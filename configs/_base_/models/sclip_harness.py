# The SCLIP harness (wangf3014/SCLIP clip_segmentor.py@b56bd30, CLIPForSegmentation defaults;
# reference notes §1.2-§1.4): OpenAI ViT-B/16, SCLIP's correlative self-attention in the last
# block, DINO-style position-embedding interpolation, 80 ImageNet templates, 224/112 windows,
# logit scale 40, no threshold, no PAMR. Dataset configs override per benchmark (notes §2.2).
# Deviation: the reference runs CLIP in fp16 on CUDA; we run fp32 (argmax agrees, notes §14.5).
# S, the short side of the Python API and the demos (method='sclip'): clip_segmentor.py's VOC/Context/Object configs: Resize to short side 336.
# Each benchmark config states its dataset's S in its test_pipeline.
short_side = 336
model = dict(
    type='OpenVocabSegmentor',
    backbone=dict(
        type='CLIPViT',
        model='ViT-B-16',
        pretrained='openai',  # the `openai` tag loads with QuickGELU, as clip.load
        dense=dict(type='SCLIPAttention'),
        pos_interp='scale_factor'),  # VisionTransformer.interpolate_pos_encoding (+0.1)
    vocabulary=None,  # each dataset config names its class-name file
    name_sep=', ',  # get_cls_idx splits lines on ', '
    templates='openai_imagenet',
    logit_scale=40.0,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=224,
    slide_stride=112,
    pad_to_patch=False,
    refiner=None)  # pamr_steps=0
