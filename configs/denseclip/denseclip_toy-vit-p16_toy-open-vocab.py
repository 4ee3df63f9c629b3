# DenseCLIP trained on the toy world's open-vocabulary split, offline on the CPU: the toy CLIP
# (ViT, 16-pixel patches, 4 layers of width 128) as DenseCLIP's ViT, trained on the 7 seen
# classes, evaluated on all 10 through the pixel-text score map:
#   python tools/train.py configs/denseclip/denseclip_toy-vit-p16_toy-open-vocab.py
#   python tools/test.py configs/denseclip/denseclip_toy-vit-p16_toy-open-vocab.py \
#       --cfg-options load_from=work_dirs/denseclip_toy-vit-p16_toy-open-vocab/iter_2000.pth
# The ViT-B/16 harness with the toy's widths and a schedule of minutes; what differs is marked.
_base_ = [
    '../_base_/models/toy_clip.py',
    '../_base_/models/denseclip_vit-b16.py',
    '../_base_/datasets/toy_open_vocab.py',
    '../_base_/schedules/denseclip_80k.py',
]
num_classes = 7  # the seen classes
model = dict(
    data_preprocessor=dict(size=(224, 224)),  # the crop
    backbone=dict(
        model={{_base_.toy_clip_model}},
        pretrained={{_base_.toy_clip_weights}},
        input_resolution=224,  # the toy CLIP's own 14x14 grid
        out_indices=(0, 1, 2, 3),  # all 4 blocks (ViT-B: 3, 5, 7, 11 of 12)
        norm_cfg=dict(type='BN')),  # one process
    vocabulary={{_base_.seen_classes}},
    test_vocabulary={{_base_.toy_vocabulary}},  # all 10, in the evaluation labels' order
    decode_head=dict(
        # Widths scaled to the toy CLIP (E = 128, text width 64): ViT-B's 256-wide decoder
        # and 256-channel FPN over E = 512 become 64.
        context_decoder=dict(transformer_width=64, visual_dim=128),
        neck=dict(in_channels=[128, 128, 128 + num_classes, 128], out_channels=64),
        decode_head=dict(in_channels=[64, 64, 64, 64], channels=64, num_classes=num_classes,
                         norm_cfg=dict(type='BN')),
        # The decoder's FPN and classifier are sized by the 7 training classes; the score map
        # s / tau is defined for any vocabulary, so the open-vocabulary evaluation uses it.
        test_output='score_map'),
    slide_crop=224,  # the scenes are 224: one window
    slide_stride=149)  # 640 / 426 of the ViT-B harness
# Deviation: a schedule of minutes instead of 80k iterations: 2000 iterations of batch 8, a
# 100-iteration warmup, the harness's AdamW, multipliers and poly decay.
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, begin=100, end=2000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2000, val_interval=2000)
default_hooks = dict(checkpoint=dict(interval=500, max_keep_ckpts=2))
randomness = dict(seed=0)
