# PixelCLIP on the offline toy CLIP (ViT, 16-pixel patches, 4 layers of width 128, E = 128,
# denseclip/toy/), for the label-free proof on the toy world. Released settings except:
# 16 learned names instead of 64 (10 toy classes, a few masks per scene); for 2 shared CPU
# cores a ConvHead of 16 channels instead of 64/64/32, 112 x 112 targets instead of 256 x 256
# and the toy CLIP's native 224 x 224 input instead of 320 x 320 (14 x 14 tokens; ViT-B/16 is
# also 224-native and PixelCLIP runs it at 20 x 20); and the toy CLIP's own templates at test
# time (the toy text tower saw only those).
_base_ = ['./toy_clip.py', './pixelclip_vit-b16.py']
model = dict(
    backbone=dict(model={{_base_.toy_clip_model}}, pretrained={{_base_.toy_clip_weights}}),
    clip_resolution=(224, 224),
    cluster_prompt=dict(num_names=16),
    decode_head=dict(conv_head=dict(channels=(16, 16, 16)), mask_size=(112, 112)),
    prompt=dict(templates={{_base_.toy_templates}}),
    vocabulary={{_base_.toy_vocabulary}},
    data_preprocessor=dict(size=(224, 224)),  # the toy crop
    logit_scale=40.0)
