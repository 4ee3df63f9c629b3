# DenseCLIP's ViT-B/16 harness on the toy CLIP (ViT, 16-pixel patches, 4 layers of width 128,
# denseclip/toy/), trained on the toy world's 7 seen classes. Widths scaled to the toy CLIP
# (E = 128, text width 64): ViT-B's 256-wide context decoder and 256-channel FPN over E = 512
# become 64.
_base_ = ['./toy_clip.py', './denseclip_vit-b16.py']
num_classes = 7  # the seen classes (datasets/toy.py seen_classes)
model = dict(
    data_preprocessor=dict(size=(224, 224)),  # the crop
    backbone=dict(
        model={{_base_.toy_clip_model}},
        pretrained={{_base_.toy_clip_weights}},
        input_resolution=224,  # the toy CLIP's own 14x14 grid
        out_indices=(0, 1, 2, 3),  # all 4 blocks (ViT-B: 3, 5, 7, 11 of 12)
        norm_cfg=dict(type='BN')),  # one process
    vocabulary=['red circle', 'yellow triangle', 'orange star', 'pink ring', 'sky', 'grass',
                'water'],  # the seen classes, in the training labels' order
    decode_head=dict(
        context_decoder=dict(transformer_width=64, visual_dim=128),
        neck=dict(in_channels=[128, 128, 128 + num_classes, 128], out_channels=64),
        decode_head=dict(in_channels=[64, 64, 64, 64], channels=64, num_classes=num_classes,
                         norm_cfg=dict(type='BN'))),
    slide_crop=224,  # the scenes are 224: one window
    slide_stride=149)  # 640 / 426 of the ViT-B harness
