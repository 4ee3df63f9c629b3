# DenseCLIP's segmentation schedule (raoyongming/DenseCLIP@5eda47f segmentation/configs/
# denseclip_fpn_res50_512x512_80k.py, _base_/schedules/schedule_80k.py; trained_methods.md §1.5),
# over the shared runtime (its hooks gain the training ones here).
_base_ = ['../default_runtime.py']
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),  # lr 0.0001, wd 0.0001
    paramwise_cfg=dict(custom_keys={
        'backbone': dict(lr_mult=0.1),  # 'backbone': lr_mult=0.1
        # 'norm': decay_mult=0. Matches the same names as released: the context decoder's
        # norm1..norm3 (CLIP's LayerNorms are ln_*, mmseg's BN in ConvModules are bn).
        'norm': dict(decay_mult=0.0),
    }),
    # 'text_encoder': lr_mult=0.0 in the release; here the text encoder has requires_grad=False
    # (OpenCLIPTextEncoder frozen=True), so it is left out of the optimizer and never moves
    # (DenseCLIP issue #28: mmcv's absolute min_lr moved the released one), while gradients
    # still reach the learned contexts through it.
    constructor='TrainableOptimWrapperConstructor')
param_scheduler = [
    # warmup='linear', warmup_iters=1500, warmup_ratio=1e-6
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    # policy='poly', power=0.9, min_lr=1e-6. Deviation: mmseg 1.x's port of mmcv's warmed-up
    # poly (as mmseg's own 1.x configs): the decay starts after the warmup instead of scaling
    # the first 1500 iterations of an 80k decay.
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, begin=1500, end=80000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
val_cfg = dict(type='ValLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),  # interval=50
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# find_unused_parameters=True (default_runtime.py): the fpn_clip baselines leave CLIP's
# attention pool / ln_post·proj unused.
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
