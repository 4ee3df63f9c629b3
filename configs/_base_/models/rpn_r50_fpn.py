# The class-agnostic proposal network of RegionCLIP's zero-shot inference: a ResNet-50 FPN RPN
# (mmdet's rpn_r50_fpn.py settings; RegionCLIP's offline RPN is detectron2's mask_rcnn_R_50_FPN
# trained on the LVIS base classes, rpn_lvis_866.pth, reference notes §7.1), trained on base
# classes only (configs/ovd/rpn_r50-fpn_1x_*-base.py). Test-time NMS 0.9 and 1000 proposals
# after NMS (OFFLINE_RPN_NMS_THRESH 0.9, POST_NMS_TOPK_TEST 1000). A variable, not `model`.
rpn = dict(
    type='RPN',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                  frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True,
                  style='pytorch',
                  init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5),
    rpn_head=dict(
        type='RPNHead', in_channels=256, feat_channels=256,
        anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(rpn=dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                      ignore_iof_thr=-1),
        sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                     add_gt_as_proposals=False),
        allowed_border=-1, pos_weight=-1, debug=False)),
    test_cfg=dict(rpn=dict(nms_pre=2000, max_per_img=1000,
                           nms=dict(type='nms', iou_threshold=0.9), min_bbox_size=0)))
