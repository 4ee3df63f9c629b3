# NACLIP on the toy world with the offline toy CLIP (ViT, 16-pixel patches, 4 layers of width
# 128): NACLIP's harness defaults (naclip.py@0cac3a6, PAMR on), the toy CLIP's own templates and
# the toy class names. The toy world has no background class.
_base_ = [
    '../_base_/models/naclip_harness.py',
    '../_base_/models/toy_clip.py',
    '../_base_/datasets/toy.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model={{_base_.toy_clip_model}}, pretrained={{_base_.toy_clip_weights}}),
    vocabulary={{_base_.toy_vocabulary}},
    templates={{_base_.toy_templates}},
    slide_crop=224,  # naclip.py default: one window per 224x224 scene
    slide_stride=112,
    logit_scale=40,  # naclip.py default
    prob_thd=0.0,
    area_thd=None,
    refiner=dict(type='PAMRRefiner', num_iter=10, dilations=(8, 16)),  # pamr_steps=10
)
