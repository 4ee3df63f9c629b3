# MTA-CLIP's schedule (anurag-198/MTA_CLIP@a62deff local_configs/r50_1.py; trained_methods.md
# §3.3), over the shared runtime.
_base_ = ['../default_runtime.py']
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.02, eps=1e-8, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1, decay_mult=1.0),
            # 'text_encoder': lr_mult=0.0 in the release; here the text encoder is frozen
            # (OpenCLIPTextEncoder frozen=True) and left out of the optimizer, as DenseCLIP's.
            'query_embed': embed_multi,  # query_embed_decoder in the release
            'query_feat': embed_multi,
            'level_embed': embed_multi,
        },
        norm_decay_mult=0.0),
    constructor='TrainableOptimWrapperConstructor')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0, power=0.9, by_epoch=False, begin=1500, end=160000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=1000,
                 val_begin=100000)
val_cfg = dict(type='ValLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # save_best='mIoU' on ADE20K val, which is also the reported set (trained_methods.md §3.5)
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, save_best='mIoU',
                    max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# 8 images per GPU on 2 GPUs (README); auto_scale_lr off as released
auto_scale_lr = dict(enable=False, base_batch_size=16)
# find_unused_parameters=True: CLIP's attention pool and the first head call's text path
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
