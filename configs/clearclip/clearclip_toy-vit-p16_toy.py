# ClearCLIP on the toy world with the offline toy CLIP (ViT, 16-pixel patches, 4 layers of width
# 128): ClearCLIP's harness defaults (clearclip_segmentor.py@ad68a40; a 448 window covers a whole
# 224x224 scene), the toy CLIP's own templates and the toy class names. No background class.
_base_ = [
    '../_base_/models/clearclip_harness.py',
    '../_base_/models/toy_clip.py',
    '../_base_/datasets/toy.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model={{_base_.toy_clip_model}}, pretrained={{_base_.toy_clip_weights}}),
    vocabulary={{_base_.toy_vocabulary}},
    # The toy file has one name a line, so ClearCLIP's ',' separator changes nothing.
    templates={{_base_.toy_templates}},
    slide_crop=448,  # clearclip_segmentor.py default
    slide_stride=224,
    logit_scale=50,  # clearclip_segmentor.py default
    prob_thd=0.0,
    area_thd=None,
    refiner=None,
)
