# The toy RPN of rpn_toy-vit-p16_toy-det-base.py trained on the training scenes that hold base
# things only (the scenes with a purple square or a black cross are left out: a training world
# in which the novel classes never occur). In the standard split the novel things are in the
# training scenes, unlabelled, so the RPN learns them as background and the zero-shot detector
# cannot find them (novel AP50 ~0, docs). Same schedule.
_base_ = [
    '../_base_/models/rpn_toy-vit-p16.py',
    '../_base_/datasets/toy_det.py',
]
model = {{_base_.rpn}}
train_dataloader = dict(dataset=dict(exclude_scenes_with={{_base_.novel_classes}}))
val_evaluator = dict(_delete_=True, type='CocoMetric',  # class-agnostic proposal recall
                     ann_file='data/toy_world/annotations/instances_val.json',
                     metric='proposal', proposal_nums=(10, 100, 1000))
test_evaluator = val_evaluator
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300, val_interval=300)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, milestones=[200, 260], gamma=0.1),
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=300, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
custom_hooks = [dict(type='FreezeModulesHook', modules=('backbone',))]
