# RegionCLIP's offline COCO RPN (rpn_coco_48.pth: detectron2 mask_rcnn_R_50_C4_1x_ovd_FSD.yaml on
# the 48 base classes), converted by tools/model_converters/regionclip.py: MSRA R-50 to res4
# (caffe style, BGR, std 1, FrozenBN), StandardRPNHead on res4, anchors 32..512 x (0.5, 1, 2) in
# detectron2's size-major order (scale_major=False); test: 6000 pre-NMS, NMS 0.7, 1000 kept.
# A variable, not `model`; named apart from rpn_r50_fpn.py's `rpn` (bases may not share keys).
rpn_c4 = dict(
    type='RPN',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[103.53, 116.28, 123.675],
                           std=[1.0, 1.0, 1.0], bgr_to_rgb=False, pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=50, num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1),
                  out_indices=(2, ), frozen_stages=-1,
                  norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, style='caffe',
                  init_cfg=None),
    neck=None,
    rpn_head=dict(
        type='RPNHead', in_channels=1024, feat_channels=1024,
        anchor_generator=dict(type='AnchorGenerator', scales=[2, 4, 8, 16, 32],
                              ratios=[0.5, 1.0, 2.0], strides=[16], scale_major=False),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0])),
    train_cfg=None,
    test_cfg=dict(rpn=dict(nms_pre=6000, max_per_img=1000,
                           nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0)))
