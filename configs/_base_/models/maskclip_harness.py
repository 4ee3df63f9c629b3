# The MaskCLIP harness (chongzhou96/MaskCLIP @245d31f, configs/_base_/models/maskclip_vit16.py
# and tools/maskclip_utils/prompt_engineering.py; reference notes §3): OpenAI ViT-B/16 whose last
# block keeps only the value path (identity attention, residual and FFN kept), size-based
# position-embedding interpolation, 85 templates, the whole image in one pass
# (test_cfg mode='whole'), argmax of the raw cosine: no threshold, no PAMR, no key smoothing or
# prompt denoising (those are MaskCLIP+ settings, commented out in the plain configs).
# Deviation: the original mmseg ViT builds plain GELU and LayerNorm eps 1e-6 around the OpenAI
# weights (notes §16); the `openai` tag loads them as trained, with QuickGELU and eps 1e-5.
# S, the short side of the Python API and the demos (method='maskclip'): MaskCLIP's ADE20K/Context test scale (img_scale short side 512).
# Each benchmark config states its dataset's S in its test_pipeline.
short_side = 512
model = dict(
    type='OpenVocabSegmentor',
    backbone=dict(
        type='CLIPViT',
        model='ViT-B-16',
        pretrained='openai',
        dense=dict(type='MaskCLIPAttention'),
        pos_interp='size'),  # interpolate_mode='bicubic' to the target grid
    vocabulary=None,  # each dataset config names its class-name file
    name_sep=', ',
    templates='maskclip',
    # No temperature in MaskCLIP: the argmax of softmax(scale * cos) is the argmax of cos for
    # any scale while prob_thd = 0, so this only shapes the probabilities reported.
    logit_scale=40.0,
    prob_thd=0.0,
    area_thd=None,
    slide_crop=0,  # whole image
    pad_to_patch=False,
    refiner=None)
