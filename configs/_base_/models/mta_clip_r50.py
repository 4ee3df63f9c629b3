# MTA-CLIP, RN50, Mask2Former decoder with text queries (anurag-198/MTA_CLIP@a62deff
# local_configs/r50_1.py, mta_clip/mta_clip.py, train.py; trained_methods.md §3). The harness: a
# leaf sets the vocabulary and what its dataset changes.
num_classes = 150  # ADE20K; the class head and the text-query embeddings are sized by it
num_prompts = 3  # n_contexts=3
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # Released quirk: ImageNet's mean/std feed CLIP (r50_1.py), and the released model was
    # trained with them, so they stay the default. CLIP's own normalisation would be
    # mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323] (denseclip_r50.py).
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))
model = dict(
    type='OpenVocabEncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='CLIPResNetWithAttention',
        model='RN50',  # layers=[3, 4, 6, 3], output_dim=1024
        pretrained='openai',  # pretrained='pretrained/RN50.pt'
        input_resolution=512),
    # CLIPTextContextEncoder context_length=13, frozen (text_encoder lr_mult=0.0)
    text_encoder=dict(context_length=13),
    # context_length=5 (SOS, <= 3 name tokens, EOS) + 8 learned tokens, n_contexts=3 sets
    prompt=dict(type='ContextPrompt', num_sets=num_prompts, num_tokens=8, name_length=3),
    extra_names=['none'],  # train.py: class_names.append('none'), the no-object text
    vocabulary='{{fileDirname}}/../../../denseclip/datasets/vocabularies/maskclip/cls_ade20k.txt',
    decode_head=dict(
        type='MTACLIPHead',
        num_classes=num_classes,  # num_classes_fin
        text_dim=1024,
        num_prompts=num_prompts,
        query_loss_type=2,  # max prompt positive, every other text negative
        loss_queries_weight=1.0,  # loss_queries_wt
        gamma_init=1e-4,  # self.gamma = ones(text_dim) * 1e-4
        mask_avg_factor='class_weight',  # as released (see MTACLIPHead)
        in_channels=[256, 512, 1024, 2048],
        strides=[4, 8, 16, 32],
        feat_channels=256,
        out_channels=256,
        num_queries=100,
        num_transformer_feat_level=3,
        align_corners=False,
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder',
            num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'),
            encoder=dict(  # DeformableDetrTransformerEncoder
                num_layers=6,
                layer_cfg=dict(  # DeformableDetrTransformerEncoderLayer
                    self_attn_cfg=dict(  # MultiScaleDeformableAttention
                        embed_dims=256, num_heads=8, num_levels=3, num_points=4,
                        im2col_step=64, dropout=0.0, batch_first=True, norm_cfg=None,
                        init_cfg=None),
                    ffn_cfg=dict(embed_dims=256, feedforward_channels=1024, num_fcs=2,
                                 ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True))),
                init_cfg=None),
            positional_encoding=dict(num_feats=128, normalize=True),
            init_cfg=None),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=128, normalize=True),
        transformer_decoder=dict(  # Mask2FormerTransformerDecoder
            return_intermediate=True,
            num_layers=9,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=256, num_heads=8, attn_drop=0.0, proj_drop=0.0,
                                   dropout_layer=None, batch_first=True),
                cross_attn_cfg=dict(embed_dims=256, num_heads=8, attn_drop=0.0, proj_drop=0.0,
                                    dropout_layer=None, batch_first=True),
                ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, num_fcs=2,
                             act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.0,
                             dropout_layer=None, add_identity=True)),
            init_cfg=None),
        loss_cls=dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
            reduction='mean', class_weight=[1.0] * num_classes + [0.1]),  # 'none': 0.1
        loss_mask=dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean', loss_weight=5.0),
        loss_dice=dict(
            type='mmdet.DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
            naive_dice=True, eps=1.0, loss_weight=5.0),
        train_cfg=dict(
            num_points=12544,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            assigner=dict(
                type='mmdet.HungarianAssigner',
                match_costs=[
                    dict(type='mmdet.ClassificationCost', weight=2.0),
                    dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                    dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0),
                ]),
            sampler=dict(type='mmdet.MaskPseudoSampler'))),
    # test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)); the head's
    # probabilities are averaged over windows
    slide_crop=512,
    slide_stride=341)
