# The NACLIP harness (sinahmr/NACLIP naclip.py@0cac3a6, NACLIP defaults with `test_all.sh
# reduced naclip 5 on`; reference notes §6): OpenAI ViT-B/16, k-k attention with the Gaussian
# neighbourhood prior (sigma 5) and no residual or FFN in the last block, DINO-style
# position-embedding interpolation, 80 ImageNet templates, 224/112 windows, logit scale 40,
# PAMR (10 steps, dilations 8 and 16) on the merged logits at the image size.
# Deviation: the reference runs CLIP in fp16 on CUDA; we run fp32 (argmax agrees, notes §14.5).
# S, the short side of the Python API and the demos (method='naclip'): naclip.py's configs: short side 336.
# Each benchmark config states its dataset's S in its test_pipeline.
short_side = 336
model = dict(
    type='OpenVocabSegmentor',
    backbone=dict(
        type='CLIPViT',
        model='ViT-B-16',
        pretrained='openai',  # the `openai` tag loads with QuickGELU, as clip.load
        dense=dict(type='NACLIPAttention', sigma=5.0),  # arch='reduced', gaussian_std=5
        pos_interp='scale_factor'),
    vocabulary=None,  # each dataset config names its class-name file (SCLIP's, byte-identical)
    name_sep=', ',
    templates='openai_imagenet',
    logit_scale=40.0,
    prob_thd=0.0,
    area_thd=None,
    renormalize=True,  # probabilities / their sum after the max over synonyms
    slide_crop=224,
    slide_stride=112,
    pad_to_patch=False,
    refiner=dict(type='PAMRRefiner', num_iter=10, dilations=(8, 16)))  # pamr_steps=10
