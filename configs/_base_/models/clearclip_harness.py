# The ClearCLIP harness (mc-lan/ClearCLIP clearclip_segmentor.py@ad68a40 with
# model_type='ClearCLIP', ignore_residual=True; reference notes §5): OpenAI ViT-B/16, q-q
# attention with no residual or FFN in the last block, DINO-style position-embedding
# interpolation, 80 ImageNet templates, 448/224 windows zero-padded (centred) to a multiple of
# the patch size, logit scale 50, no PAMR.
# Deviation: the reference runs CLIP in fp16 on CUDA; we run fp32 (argmax agrees, notes §14.5).
# S, the short side of the Python API and the demos (method='clearclip'): ClearCLIP's configs: short side 448.
# Each benchmark config states its dataset's S in its test_pipeline.
short_side = 448
model = dict(
    type='OpenVocabSegmentor',
    backbone=dict(
        type='CLIPViT',
        model='ViT-B-16',
        pretrained='openai',  # create_model('ViT-B/16', pretrained='openai'): QuickGELU
        dense=dict(type='ClearCLIPAttention'),
        pos_interp='scale_factor'),
    vocabulary=None,  # each dataset config names its class-name file
    name_sep=',',  # ClearCLIP splits lines on ',' (later synonyms keep a leading space)
    templates='openai_imagenet',
    logit_scale=50.0,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=448,
    slide_stride=224,
    pad_to_patch=True,  # compute_padsize
    refiner=None)
