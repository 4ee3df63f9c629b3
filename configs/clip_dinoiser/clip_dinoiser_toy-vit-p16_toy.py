# CLIP-DINOiser on the toy world with the offline toy CLIP (ViT, 16-pixel patches, 4 layers of
# width 128) and heads trained on toy scenes by clip_dinoiser_toy-vit-p16_toy-train.py, whose
# "DINO" teacher is the toy CLIP's own image tower (no DINO weights offline). The harness
# otherwise: MaskCLIP features pooled with the predicted correlations, softmax per window;
# the toy CLIP's own templates and class names. The toy world has no background class, so
# the FOUND background override stays off.
_base_ = [
    '../_base_/models/clip_dinoiser_harness.py',
    '../_base_/models/toy_clip.py',
    '../_base_/datasets/toy.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model={{_base_.toy_clip_model}}, pretrained={{_base_.toy_clip_weights}}),
    vocabulary={{_base_.toy_vocabulary}},
    templates={{_base_.toy_templates}},
    slide_crop=224,  # one window per 224x224 scene, at its native scale
    slide_stride=112,
    feature_refiner=dict(
        in_channels=128,  # the toy tower's width
        proj_channels=64,  # as trained (clip_dinoiser_toy-vit-p16_toy-train.py)
        gamma=0.7,  # as trained; Deviation from the released 0.2: see the train config
        apply_found=False,  # no background class in the toy world
        # denseclip/toy/__init__.py TOY_CLIP_DINOISER_HEADS
        checkpoint='{{fileDirname}}/../../denseclip/toy/toy_clip_dinoiser_heads.safetensors'),
)
