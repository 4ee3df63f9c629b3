# MaskCLIP on the toy world with the offline toy CLIP (ViT, 16-pixel patches, 4 layers of width
# 128): MaskCLIP's harness (whole image, size-based position interpolation, argmax of the
# cosine), with the toy CLIP's own templates instead of the 85 ImageNet/scene templates, which
# the toy text tower never saw. The toy world has no background class.
_base_ = [
    '../_base_/models/maskclip_harness.py',
    '../_base_/models/toy_clip.py',
    '../_base_/datasets/toy.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model={{_base_.toy_clip_model}}, pretrained={{_base_.toy_clip_weights}}),
    vocabulary={{_base_.toy_vocabulary}},
    templates={{_base_.toy_templates}},
    slide_crop=0,  # test_cfg mode='whole'
    logit_scale=40,  # irrelevant to the argmax (no temperature)
    prob_thd=0.0,
    area_thd=None,
    refiner=None,
)
