# Trident on the toy world with the offline toy CLIP (ViT, 16-pixel patches, 4 layers of width
# 128). Deviations (toy only): no DINO or SAM weights exist offline. The toy CLIP's own image
# tower, loaded as a timm ViT, stands in for DINO (same 16-pixel grid, CLIP's normalisation), as
# in proxyclip_toy-vit-p16_toy.py; a deterministic random small SAM encoder (SmallSAMEncoder,
# seed 0: 448-pixel input, width 64, 2 blocks, the last global) stands in for SAM ViT-B, so the
# SAM aggregation runs on untrained attention. The harness otherwise (beta 1.2, gamma 3.0,
# cos_fac 1.2); one 224 window per 224x224 scene at its native scale, as the proxyclip toy config;
# the toy CLIP's own templates and class names. The toy world has no background class.
_base_ = [
    '../_base_/models/trident_harness.py',
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
    sam=dict(_delete_=True, type='SmallSAMEncoder', seed=0, img_size=448),  # toy stand-in
    vocabulary={{_base_.toy_vocabulary}},
    templates={{_base_.toy_templates}},
    slide_crop=224,  # one window per 224x224 scene, at its native scale
    slide_stride=112,
)
