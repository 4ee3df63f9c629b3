# RegionCLIP's offline LVIS RPN (rpn_lvis_866_lsj.pth, which the released LVIS transfer
# evaluation uses with OFFLINE_RPN_LSJ_PRETRAINED True: SyncBN in ResNet and FPN, two RPN
# convs), converted by tools/model_converters/regionclip.py: MSRA R-50-FPN (caffe style,
# BGR, std 1, frozen BN); detectron2's test settings. For the plain rpn_lvis_866.pth drop
# the neck's norm_cfg and the head's num_convs. A variable, not `model` (bases may not
# share keys).
rpn_fpn_lsj = dict(
    type='RPN',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[103.53, 116.28, 123.675],
                           std=[1.0, 1.0, 1.0], bgr_to_rgb=False, pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
                  frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=False),
                  norm_eval=True, style='caffe', init_cfg=None),
    neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5,
              norm_cfg=dict(type='BN', requires_grad=False)),
    rpn_head=dict(
        type='RPNHead', in_channels=256, feat_channels=256, num_convs=2,
        anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0])),
    train_cfg=None,
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=1000,
                           nms=dict(type='nms', iou_threshold=0.7), min_bbox_size=0)))
