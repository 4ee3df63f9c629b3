# The class-agnostic RPN of the toy open-vocabulary detection setting, trained on the boxes of
# the four base things only (toy_det.py; the novel purple squares and black crosses are
# unlabelled, so they are background to it): mmdet's RPN head on the frozen toy CLIP's ViT
# (block 3's tokens, stride 16), 300 iterations of batch 8 on the CPU (a few minutes), SGD
# 0.02 with warmup. Its checkpoint is the proposal source of
# configs/ovd/regionclip_toy-vit-p16_zs_toy-det.py (model.rpn_checkpoint).
_base_ = [
    '../_base_/models/rpn_toy-vit-p16.py',
    '../_base_/datasets/toy_det.py',
]
model = {{_base_.rpn}}
train_dataloader = dict(batch_size=8)
# proposal recall of the base and the novel things (CocoMetric's AR@k without classes)
val_evaluator = dict(_delete_=True, type='CocoMetric',  # proposal recall, not OVDCocoMetric
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
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=300, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
log_processor = dict(by_epoch=False)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
randomness = dict(seed=0)
custom_hooks = [dict(type='FreezeModulesHook', modules=('backbone',))]
