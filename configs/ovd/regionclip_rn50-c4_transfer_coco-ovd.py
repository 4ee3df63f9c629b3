# RegionCLIP's transfer learning on COCO OVD (CLIP_fast_rcnn_R_50_C4_ovd.yaml): the RoI head
# (res5 + attention pool, from CLIP) and the trunk above res2 (FREEZE_AT 2, frozen BN) trained
# on the 48 base classes with their text embeddings as the classifier, T = 0.01, zero
# background; focal-scaled cross-entropy (gamma 0.5) with background weight 0.2, class-agnostic
# box deltas; 90k iterations of batch 16 (2 x 8 GPUs), SGD 0.002, warmup 5000, steps 60k /
# 80k, short side 640-800. Evaluated on all 65 classes with the deltas applied. Published
# (RegionCLIP MODEL_ZOO, from its CC3M-pretrained RN50): novel AP50 31.4, all 50.4; from OpenAI
# weights expect less (RegionCLIP's released models: tools/model_converters/regionclip.py and
# configs/ovd/regionclip_rn50-c4_released_coco-ovd.py).
#   bash tools/dist_train.sh configs/ovd/regionclip_rn50-c4_transfer_coco-ovd.py 8
_base_ = [
    '../_base_/models/regionclip_rn50-c4.py',
    '../_base_/datasets/coco_ovd.py',
]
model = dict(
    vocabulary={{_base_.classes}},
    rpn_checkpoint='work_dirs/rpn_r50-fpn_1x_coco-ovd-base/iter_90000.pth',
    train_vocabulary={{_base_.base_classes}},
    use_box_deltas=True,  # NO_BOX_DELTA False
    objectness=None,  # MULTIPLY_RPN_SCORE False (CLIP_fast_rcnn_R_50_C4_ovd.yaml's default)
    train_cfg=dict(bg_weight=0.2, focal_gamma=0.5, num_rois=512, pos_fraction=0.25,
                   pos_iou=0.5))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=90000, val_interval=25000)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=0.0001),
    # the text tower is frozen (text embeddings are the classifier) and the RPN is offline
    paramwise_cfg=dict(custom_keys={'text_encoder': dict(lr_mult=0.0),
                                    'rpn': dict(lr_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=5000),
    dict(type='MultiStepLR', by_epoch=False, milestones=[60000, 80000], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
