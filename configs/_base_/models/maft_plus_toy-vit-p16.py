# MAFT+'s harness (maft_plus_convnext-b.py) on the toy CLIP (ViT, 16-pixel patches, 4 layers of
# width 128, E = 128, denseclip/toy/), trained on the toy world's 7 seen classes. MAFT+ needs a
# hierarchical CLIP trunk and the toy CLIP is a ViT: CLIPViTStages presents its four blocks'
# maps (pre ln_post) at strides 4, 8, 16, 16 (bilinear, no weights) as the trunk stages, the last
# block's map as the trunk output D and ln_post + proj per location as the frozen CLIP head
# (ConvNeXt: trunk.head.norm + head). The mask generator is reduced to fit 2 CPU cores as in
# mta_clip_toy-vit-p16.py: 64 channels instead of 256, 4 heads instead of 8, 1 deformable
# encoder layer instead of 6, 3 decoder layers instead of 9, 20 queries instead of 100, 2048
# points instead of 12544. Every loss, weight, CDT and the inference arithmetic are MAFT+'s.
_base_ = ['./toy_clip.py', './maft_plus_convnext-b.py']
num_classes = 7  # the seen classes (datasets/toy.py seen_classes)
feat = 64
heads = 4
clip = dict(
    type='CLIPViTStages',
    model={{_base_.toy_clip_model}},
    pretrained={{_base_.toy_clip_weights}},
    out_indices=(0, 1, 2, 3))  # all 4 blocks
model = dict(
    data_preprocessor=dict(size=(224, 224), size_divisor=None),  # the crop
    backbone=clip,
    prompt=dict(templates={{_base_.toy_templates}}),  # the templates the toy text tower saw
    name_sep=', ',
    vocabulary=['red circle', 'yellow triangle', 'orange star', 'pink ring', 'sky', 'grass',
                'water'],  # the seen classes, in the training labels' order
    decode_head=dict(
        num_classes=num_classes,
        teacher=clip,
        embed_dim=128,  # the toy CLIP's joint space
        cdt_heads=heads,
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
    pad_multiple=16)  # whole 224 scenes, padded to the patch
