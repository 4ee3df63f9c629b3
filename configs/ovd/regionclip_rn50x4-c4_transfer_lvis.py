# RegionCLIP's transfer learning on LVIS v1 (LVISv1-InstanceSegmentation/CLIP_fast_rcnn_R_50_C4
# .yaml with RN50x4): the base (frequent + common) annotations, the 1203 class names as the
# classifier, cross-entropy with background weight 0.8 (no focal scaling), class-agnostic
# deltas; 180k iterations of batch 16, SGD 0.002, warmup 5000, steps 120k / 160k, repeat-
# factor sampling 0.001 (lvis_ovd.py), 300 detections. Published (RegionCLIP MODEL_ZOO, from
# its CC3M-pretrained RN50x4): APr 22.0, AP 32.3 (RegionCLIP's released model:
# tools/model_converters/regionclip.py and configs/ovd/regionclip_rn50x4-c4_released_lvis.py).
#   bash tools/dist_train.sh configs/ovd/regionclip_rn50x4-c4_transfer_lvis.py 8
_base_ = [
    '../_base_/models/regionclip_rn50-c4.py',
    '../_base_/datasets/lvis_ovd.py',
]
model = dict(
    backbone=dict(model='RN50x4'),
    roi_size=18,
    vocabulary={{_base_.vocabulary}},
    rpn_checkpoint='work_dirs/rpn_r50-fpn_1x_lvis-base/iter_90000.pth',
    test_cfg=dict(score_thr=0.02, max_per_img=300),
    use_box_deltas=True,
    train_cfg=dict(bg_weight=0.8, focal_gamma=0.0, num_rois=512, pos_fraction=0.25,
                   pos_iou=0.5))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=180000, val_interval=60000)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(custom_keys={'text_encoder': dict(lr_mult=0.0),
                                    'rpn': dict(lr_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=5000),
    dict(type='MultiStepLR', by_epoch=False, milestones=[120000, 160000], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=20000))
log_processor = dict(by_epoch=False)
