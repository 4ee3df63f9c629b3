# ProxyCLIP on the toy world with the offline toy CLIP (ViT, 16-pixel patches, 4 layers of width
# 128). Deviation: no DINO weights exist offline, so on the toy world the toy CLIP's own image
# tower, loaded as a timm ViT, stands in for DINO as the proxy (same 16-pixel grid, CLIP's
# normalisation). The harness otherwise (beta 1.2, gamma 3.0, windows padded to a multiple of
# 56); the toy CLIP's own templates and class names. The toy world has no background class.
_base_ = [
    '../_base_/models/proxyclip_harness.py',
    '../_base_/models/toy_clip.py',
    '../_base_/datasets/toy.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        model={{_base_.toy_clip_model}},
        pretrained={{_base_.toy_clip_weights}},
        dense=dict(proxy=dict(
            type='DINOProxy',
            # timm's CLIP tower (pre-norm, no patch bias), converted from the toy checkpoint by
            # timm's CLIP converter; QuickGELU as in toy_clip.json
            model='vit_base_patch16_clip_224',
            pretrained={{_base_.toy_clip_weights}},
            model_kwargs=dict(embed_dim=128, depth=4, num_heads=2, act_layer='quick_gelu'),
            mean=(0.48145466, 0.4578275, 0.40821073),  # open_clip OPENAI_DATASET_MEAN
            std=(0.26862954, 0.26130258, 0.27577711)))),  # open_clip OPENAI_DATASET_STD
    vocabulary={{_base_.toy_vocabulary}},
    templates={{_base_.toy_templates}},
    slide_crop=224,  # one window per 224x224 scene, at its native scale
    slide_stride=112,
)
