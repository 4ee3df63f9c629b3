# PixelCLIP's schedule (cvlab-kaist/PixelCLIP@42f5c9c configs/pixelclip_vit_base.yaml SOLVER,
# train_net.py build_optimizer; trained_methods.md §4.3), over the shared runtime.
_base_ = ['../default_runtime.py']
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),  # BASE_LR, WEIGHT_DECAY
    # CLIP_GRADIENTS: full_model, CLIP_VALUE 0.01, NORM_TYPE 2.0
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={
            # CLIP_MULTIPLIER 0.01 on the image tower's trained weights (attention + positional
            # embedding for ViT, all of it for ConvNeXt); the text tower is frozen
            'backbone': dict(lr_mult=0.01),
            # PROMPT_MULTIPLIER 10 on the learned class-name tokens (prompt_tokens)
            'cluster_prompt': dict(lr_mult=10.0),
        },
        norm_decay_mult=0.0),  # WEIGHT_DECAY_NORM 0.0 (detectron2 default), ConvHead GroupNorms
    # only trainable weights enter the optimizer: the teacher and mask source are frozen
    constructor='TrainableOptimWrapperConstructor')
param_scheduler = [
    # WarmupCosineLR, WARMUP_ITERS 0, from BASE_LR to BASE_LR_END 1e-4: every group's rate ends
    # at half its start (detectron2 scales each group's multiplier the same way)
    dict(type='CosineAnnealingLR', T_max=10000, eta_min_ratio=0.5, by_epoch=False, begin=0,
         end=10000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=10000, val_interval=1000)  # EVAL_PERIOD
val_cfg = dict(type='ValLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# The last block's q and k get no gradient (the dense path reads only v).
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
