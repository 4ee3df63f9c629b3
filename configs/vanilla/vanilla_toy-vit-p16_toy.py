# Vanilla CLIP (last block unchanged) on the toy world with the offline toy CLIP (ViT, 16-pixel
# patches, 4 layers of width 128) in SCLIP's harness (clip_segmentor.py@b56bd30 defaults), with
# the toy CLIP's own templates and the toy class names. The toy world has no background class.
_base_ = [
    '../_base_/models/vanilla_harness.py',
    '../_base_/models/toy_clip.py',
    '../_base_/datasets/toy.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        model={{_base_.toy_clip_model}},
        pretrained={{_base_.toy_clip_weights}}),
    vocabulary={{_base_.toy_vocabulary}},
    templates={{_base_.toy_templates}},
    slide_crop=224,  # clip_segmentor.py default: one window per 224x224 scene
    slide_stride=112,
    logit_scale=40,  # clip_segmentor.py default
    prob_thd=0.0,  # no background class
    area_thd=None,
    refiner=None,
)
