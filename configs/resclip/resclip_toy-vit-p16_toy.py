# ResCLIP on NACLIP on the toy world with the offline toy CLIP (ViT, 16-pixel patches, 4 layers
# of width 128): ResCLIP's harness with RCS's blocks scaled to 4 blocks (ViT-B's 5..8 of 0..10
# become 1..2 of 0..2), the harness's default weights and temp_thd (cfg_ade20k.py's), the toy
# CLIP's own templates and the toy class names. The toy world has no background class.
_base_ = [
    '../_base_/models/resclip_harness.py',
    '../_base_/models/toy_clip.py',
    '../_base_/datasets/toy.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        model={{_base_.toy_clip_model}},
        pretrained={{_base_.toy_clip_weights}},
        dense=dict(rcs_blocks=(1, 3))),
    vocabulary={{_base_.toy_vocabulary}},
    templates={{_base_.toy_templates}},
)
