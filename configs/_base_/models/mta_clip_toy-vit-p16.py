# MTA-CLIP's harness (mta_clip_r50.py) on the toy CLIP (ViT, 16-pixel patches, 4 layers of
# width 128, denseclip/toy/), trained on the toy world's 7 seen classes. The backbone is
# DenseCLIP's ViT (fpn1..fpn4 give the strides 4-32 the pixel decoder takes), and the decoder is
# reduced to fit 2 CPU cores: 64 channels instead of 256, 4 heads instead of 8, 1 deformable
# encoder layer instead of 6, 3 decoder layers instead of 9 (one per level), 20 mask queries
# instead of 100, 2048 points instead of 12544. Every loss, weight and the query layout are the
# released ones.
_base_ = ['./toy_clip.py', './mta_clip_r50.py']
num_classes = 7  # the seen classes (datasets/toy.py seen_classes)
feat = 64
heads = 4
model = dict(
    data_preprocessor=dict(
        # the toy CLIP was trained with CLIP's normalisation (not the release's ImageNet quirk)
        mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323], size=(224, 224)),
    backbone=dict(
        _delete_=True,  # another backbone type: none of the ResNet's arguments apply
        type='CLIPVisionTransformer',
        model={{_base_.toy_clip_model}},
        pretrained={{_base_.toy_clip_weights}},
        input_resolution=224,  # the toy CLIP's own 14x14 grid
        out_indices=(0, 1, 2, 3),  # all 4 blocks
        drop_path_rate=0.0,
        get_embeddings=True,  # as DenseCLIP's ViT (forward_dense); MTA-CLIP reads the levels
        norm_cfg=dict(type='BN')),  # one process
    vocabulary=['red circle', 'yellow triangle', 'orange star', 'pink ring', 'sky', 'grass',
                'water'],  # the seen classes, in the training labels' order
    decode_head=dict(
        num_classes=num_classes,
        text_dim=128,  # the toy CLIP's joint space
        in_channels=[128, 128, 128, 128],
        feat_channels=feat,
        out_channels=feat,
        num_queries=20,
        pixel_decoder=dict(
            norm_cfg=dict(type='GN', num_groups=16),
            encoder=dict(
                num_layers=1,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=feat, num_heads=heads),
                    ffn_cfg=dict(embed_dims=feat, feedforward_channels=4 * feat))),
            positional_encoding=dict(num_feats=feat // 2)),
        positional_encoding=dict(num_feats=feat // 2),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=feat, num_heads=heads),
                cross_attn_cfg=dict(embed_dims=feat, num_heads=heads),
                ffn_cfg=dict(embed_dims=feat, feedforward_channels=8 * feat))),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1]),
        train_cfg=dict(num_points=2048)),
    slide_crop=224,  # the scenes are 224: one window
    slide_stride=149)
