# The class-agnostic proposal network of the toy open-vocabulary detection setting: mmdet's RPN
# on the toy CLIP's ViT (4 blocks of width 128, 16-pixel patches; block 3's tokens at stride
# 16, before the last block's dense attention), trained on the toy world's base things
# (configs/ovd/rpn_toy-vit-p16_toy-det-base.py). A variable, not `model`: the RegionCLIP
# configs put it in their detector, the RPN's training config makes it its model.
_base_ = ['./toy_clip.py']
rpn = dict(
    type='RPN',
    # its own normalisation (the offline RPN of RegionCLIP has its own too): CLIP's here
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[122.7709383, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(type='CLIPViT', model={{_base_.toy_clip_model}},
                  pretrained={{_base_.toy_clip_weights}}, out_indices=(2,),
                  # its last block unused; built in mmseg's scope (an mmdet config's default
                  # scope cannot see denseclip's dense attentions)
                  dense=dict(type='VanillaAttention', _scope_='mmseg')),
    neck=None,
    rpn_head=dict(
        type='RPNHead',
        in_channels=128,
        feat_channels=128,
        anchor_generator=dict(type='AnchorGenerator', scales=[2, 3, 4, 6, 8],
                              ratios=[0.5, 1.0, 2.0], strides=[16]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                          min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                         add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False)),
    # RegionCLIP's offline RPN at test time: NMS 0.9 (ViLD practice), 1000 after NMS
    test_cfg=dict(rpn=dict(nms_pre=2000, max_per_img=1000, nms=dict(type='nms',
                                                                    iou_threshold=0.9),
                           min_bbox_size=0)))
