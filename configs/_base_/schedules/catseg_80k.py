# CAT-Seg's schedule (KU-CVLAB/CAT-Seg@6d3a188 configs/config.yaml SOLVER, train_net.py
# build_optimizer; trained_methods.md §2.3), over the shared runtime.
_base_ = ['../default_runtime.py']
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),  # BASE_LR, WEIGHT_DECAY
    # CLIP_GRADIENTS: full_model, CLIP_VALUE 0.01, NORM_TYPE 2.0
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={
            # CLIP_MULTIPLIER 0.01 on every module under clip_model: both towers
            'backbone': dict(lr_mult=0.01),
            'text_encoder': dict(lr_mult=0.01),
        },
        norm_decay_mult=0.0),  # WEIGHT_DECAY_NORM 0.0 (detectron2 default)
    # only trainable weights enter the optimizer: CLIP's q/v projections, the head
    constructor='TrainableOptimWrapperConstructor')
param_scheduler = [
    # WarmupCosineLR with WARMUP_ITERS 0: cosine from 2e-4 to 0 over MAX_ITER
    dict(type='CosineAnnealingLR', T_max=80000, eta_min=0.0, by_epoch=False, begin=0,
         end=80000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=80000, val_interval=5000)  # EVAL_PERIOD
val_cfg = dict(type='ValLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# The last image block's q projection gets no gradient (the dense block reads only v).
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
