# DenseCLIP's fpn_clip baseline on the toy world's open-vocabulary split: the toy CLIP's image
# tower fine-tuned with Semantic FPN on the 7 seen classes, no text. Its classifier has 7
# outputs, so it cannot name the unseen classes: it is scored on the seen classes alone
# (the evaluation split with unseen pixels ignored), as a closed-set reference:
#   python tools/train.py configs/denseclip/fpn-clip_toy-vit-p16_toy-open-vocab.py
#   python tools/test.py configs/denseclip/fpn-clip_toy-vit-p16_toy-open-vocab.py \
#       --checkpoint work_dirs/fpn-clip_toy-vit-p16_toy-open-vocab/iter_3000.pth
# The ViT-B/16 baseline with the toy's widths and DenseCLIP's toy schedule (denseclip_toy-3k.py).
_base_ = [
    '../_base_/models/toy_clip.py',
    '../_base_/models/fpn_clip_r50.py',
    '../_base_/datasets/toy_seen.py',
    '../_base_/schedules/denseclip_toy-3k.py',
]
num_classes = 7  # the seen classes
model = dict(
    data_preprocessor=dict(size=(224, 224)),
    backbone=dict(
        _delete_=True,  # another backbone type: none of the ResNet's arguments apply
        type='CLIPVisionTransformer',
        model={{_base_.toy_clip_model}},
        pretrained={{_base_.toy_clip_weights}},
        input_resolution=224,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.0,  # fpn_clipvit-b sets none
        get_embeddings=False,
        norm_cfg=dict(type='BN')),
    neck=dict(in_channels=[128, 128, 128, 128], out_channels=64),
    decode_head=dict(in_channels=[64, 64, 64, 64], channels=64, num_classes=num_classes,
                     norm_cfg=dict(type='BN')),
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(149, 149)))
