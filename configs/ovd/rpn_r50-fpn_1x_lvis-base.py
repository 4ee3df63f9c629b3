# The class-agnostic RPN of RegionCLIP's zero-shot inference (rpn_lvis_866.pth): mmdet's RPN
# R50-FPN trained on the 866 LVIS base (frequent + common) classes, 90k iterations of batch 16,
# SGD 0.02, steps 60k / 80k, repeat-factor sampling 0.001. Its checkpoint is
# model.rpn_checkpoint of the LVIS RegionCLIP configs.
#   bash tools/dist_train.sh configs/ovd/rpn_r50-fpn_1x_lvis-base.py 8
_base_ = [
    '../_base_/models/rpn_r50_fpn.py',
    '../_base_/datasets/lvis_ovd.py',
]
model = {{_base_.rpn}}
val_evaluator = dict(_delete_=True, type='LVISMetric',  # proposal recall
                     ann_file='data/lvis/annotations/lvis_v1_val.json', metric='proposal',
                     proposal_nums=(100, 300, 1000))
test_evaluator = val_evaluator
train_cfg = dict(type='IterBasedTrainLoop', max_iters=90000, val_interval=30000)
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', by_epoch=False, milestones=[60000, 80000], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
