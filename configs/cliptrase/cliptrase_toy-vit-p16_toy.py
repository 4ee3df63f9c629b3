# CLIPtrase on the toy world with the offline toy CLIP (ViT, 16-pixel patches, 4 layers of width
# 128): CLIPtrase's harness at 224 (one pass per 224x224 scene, logit scale 100, DBSCAN region
# vote with the 224 preset, eps 0.7 / min_samples 3), the toy CLIP's own templates and the toy
# class names. The toy world has no background class, so there is no background word list.
_base_ = [
    '../_base_/models/cliptrase_harness.py',
    '../_base_/models/toy_clip.py',
    '../_base_/datasets/toy.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model={{_base_.toy_clip_model}}, pretrained={{_base_.toy_clip_weights}}),
    vocabulary={{_base_.toy_vocabulary}},
    templates={{_base_.toy_templates}},
    slide_crop=0,  # self_clip: one pass per image
    logit_scale=100,  # clip.logit_scale.exp()
    prob_thd=0.0,
    area_thd=None,
    patch_refiner=dict(type='CLIPtraseRegionRefiner', mode='vote', preset=224,
                       cls_product=False),
)
