# A DenseCLIP RetinaNet on the toy CLIP (ViT, 16-pixel patches, 4 layers of width 128, E = 128,
# denseclip/toy/): DenseCLIP's ViT backbone (fpn1..fpn4, strides 4-32) with the score map
# joined to the stride-16 level (its ViT segmentation's index 2: z is stride 16), widths
# scaled to the toy CLIP. Not a released configuration (the release has no ViT detector).
_base_ = ['./toy_clip.py']
num_classes = 6  # the toy world's things (configs/_base_/datasets/toy_det.py classes)
model = dict(
    type='DenseCLIPRetinaNet',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[122.771, 116.746, 104.094],  # CLIP's mean x 255
        std=[68.501, 66.632, 70.323],  # CLIP's std x 255
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='CLIPVisionTransformer',
        model={{_base_.toy_clip_model}},
        pretrained={{_base_.toy_clip_weights}},
        input_resolution=224,  # the toy CLIP's own 14 x 14 grid
        out_indices=(0, 1, 2, 3),  # all 4 blocks
        drop_path_rate=0.0,
        norm_cfg=dict(type='BN')),  # one process
    vocabulary=['red circle', 'yellow triangle', 'purple square', 'orange star', 'pink ring',
                'black cross'],  # the dataset's classes, in its order
    text_encoder=dict(context_length=13),
    prompt=dict(type='ContextPrompt', num_sets=1, num_tokens=8, name_length=3),
    context_decoder=dict(
        type='ContextDecoder',
        transformer_width=64,
        transformer_heads=4,
        transformer_layers=3,
        visual_dim=128,
        dropout=0.1),
    tau=0.07,
    gamma_init=1e-4,
    score_concat_index=2,  # the stride-16 level, where z lives
    aux_loss_weight=1.0,
    neck=dict(
        type='FPN',
        in_channels=[128, 128, 128 + num_classes, 128],
        out_channels=64,
        start_level=1,
        add_extra_convs='on_input',
        num_outs=5),
    bbox_head=dict(
        type='RetinaHead',
        num_classes=num_classes,
        in_channels=64,
        stacked_convs=2,
        feat_channels=64,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=4,
            scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0],
            strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                      ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'),
        allowed_border=-1,
        pos_weight=-1,
        debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
custom_hooks = [dict(type='DetVocabularyCheckHook')]
