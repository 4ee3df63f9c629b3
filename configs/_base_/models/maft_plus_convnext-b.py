# MAFT+ with ConvNeXt-B (jiaosiyu1999/MAFT-Plus@fd12806 configs/semantic/train_semantic_base.yaml
# over maskformer2_R50_bs16_50ep.yaml and Base-COCO-PanopticSegmentation.yaml, maft/config.py;
# trained_methods.md §5). The harness: a leaf sets the test vocabulary and its dataset.
num_classes = 171  # COCO-Stuff, SEM_SEG_HEAD.NUM_CLASSES
clip = dict(
    type='CLIPConvNeXt',
    model='convnext_base_w_320',  # FC_CLIP.CLIP_MODEL_NAME (not convnext_base_w: 320 px tower)
    pretrained='laion_aesthetic_s13b_b82k_augreg')  # FC_CLIP.CLIP_PRETRAINED_WEIGHTS
embed_dim = 640  # FC_CLIP.EMBED_DIM, cdt_params [640, 8]
feat = 256  # CONVS_DIM = MASK_DIM = HIDDEN_DIM
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709383, 116.7460125, 104.09373615],  # PIXEL_MEAN (CLIP's, 0-255, RGB)
    std=[68.5005327, 66.6321579, 70.32316305],  # PIXEL_STD
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=32)  # SIZE_DIVISIBILITY 32 (ImageList padding, bottom/right)
model = dict(
    type='OpenVocabEncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=clip,  # the student: stem, stages (and the identity norm_pre) train at lr x 0.1
    text_encoder=dict(frozen=True),  # the text tower is frozen (FC-CLIP get_text_classifier)
    prompt=dict(type='TemplatePrompt', templates='vild'),  # VILD_PROMPT, 14 templates
    # FC-CLIP's class files: one class a line, synonyms split on ',' (the release's
    # split_labels); openseg_classes.py *_with_prompt_eng.txt without their "id:" prefixes.
    name_sep=',',
    vocabulary='{{fileDirname}}/../../../denseclip/datasets/vocabularies/maft_plus/'
    'cls_coco_stuff.txt',
    decode_head=dict(
        type='MAFTPlusHead',
        num_classes=num_classes,
        teacher=clip,  # backbone_t = build_backbone(cfg): the same CLIP, frozen
        embed_dim=embed_dim,
        cdt_heads=8,  # cdt_params[1]
        panoptic_cdt=False,  # TEST.PANOPTIC_ON False: T' = LN(T + W·attn)
        mask_aware_weight=1.0,  # losses['ranking_loss'], unweighted
        rc_weight=0.1,  # rc_weights
        rc_scales=(1, 2, 4),  # Representation_Compensation spp_scales
        in_channels=[128, 256, 512, 1024],  # res2..res5 of convnext_base_w
        strides=[4, 8, 16, 32],
        feat_channels=feat,
        out_channels=feat,
        num_queries=100,  # NUM_OBJECT_QUERIES
        num_transformer_feat_level=3,
        align_corners=False,
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder',
            num_outs=3,  # res3..res5 in the deformable encoder
            norm_cfg=dict(type='GN', num_groups=32),  # SEM_SEG_HEAD.NORM 'GN'
            act_cfg=dict(type='ReLU'),
            encoder=dict(
                num_layers=6,  # TRANSFORMER_ENC_LAYERS
                layer_cfg=dict(
                    self_attn_cfg=dict(
                        embed_dims=feat, num_heads=8, num_levels=3, num_points=4,
                        im2col_step=64, dropout=0.0, batch_first=True, norm_cfg=None,
                        init_cfg=None),
                    # dim_feedforward 1024 for the deformable encoder; MASK_FORMER.DROPOUT 0.0
                    ffn_cfg=dict(embed_dims=feat, feedforward_channels=1024, num_fcs=2,
                                 ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True))),
                init_cfg=None),
            positional_encoding=dict(num_feats=feat // 2, normalize=True),
            init_cfg=None),
        enforce_decoder_input_project=False,  # ENFORCE_INPUT_PROJ
        positional_encoding=dict(num_feats=feat // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=9,  # DEC_LAYERS 10 = 9 layers + the learnable queries' prediction
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=feat, num_heads=8, attn_drop=0.0, proj_drop=0.0,
                                   dropout_layer=None, batch_first=True),
                cross_attn_cfg=dict(embed_dims=feat, num_heads=8, attn_drop=0.0, proj_drop=0.0,
                                    dropout_layer=None, batch_first=True),
                ffn_cfg=dict(embed_dims=feat, feedforward_channels=2048, num_fcs=2,
                             act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.0,
                             dropout_layer=None, add_identity=True)),
            init_cfg=None),
        loss_cls=dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,  # CLASS_WEIGHT
            reduction='mean', class_weight=[1.0] * num_classes + [0.1]),  # NO_OBJECT_WEIGHT
        loss_mask=dict(
            type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean',
            loss_weight=5.0),  # MASK_WEIGHT
        loss_dice=dict(
            type='mmdet.DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
            naive_dice=True, eps=1.0, loss_weight=5.0),  # DICE_WEIGHT
        train_cfg=dict(
            num_points=12544,  # TRAIN_NUM_POINTS 112 * 112
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
    # Whole-image inference at detectron2's test size (below), padded to a multiple of 32.
    # Deviation: the padding is centred (pad_to_patch), the release pads bottom/right.
    slide_crop=0,
    pad_to_patch=True,
    pad_multiple=32)
# detectron2's default test resize (INPUT.MIN_SIZE_TEST 800, MAX_SIZE_TEST 1333: the MAFT+
# configs set neither); a leaf puts it in its dataset's test dataloader.
maft_plus_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
maft_plus_wide_test_pipeline = [  # A-847, PC-459: labels above 255
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadWideAnnotations'),
    dict(type='PackSegInputs'),
]
