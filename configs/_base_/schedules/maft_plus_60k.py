# MAFT+'s schedule for B (configs/semantic/train_semantic_base.yaml SOLVER over
# Base-COCO-PanopticSegmentation.yaml; trained_methods.md §5.3), over the shared runtime.
# Batch 8 in total (IMS_PER_BATCH 8 on 8 GPUs: tools/dist_train.sh CONFIG 8 with 1 per GPU).
_base_ = ['../default_runtime.py']
no_decay = dict(decay_mult=0.0)
optim_wrapper = dict(
    type='AmpOptimWrapper',  # SOLVER.AMP.ENABLED
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=2e-5),  # BASE_LR, WEIGHT_DECAY
    # CLIP_GRADIENTS: full_model, value 0.01, norm 2
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1),  # BACKBONE_MULTIPLIER (the trunk; the head frozen)
            # WEIGHT_DECAY_EMBED 0.0: nn.Embedding weights
            'query_embed': no_decay,
            'query_feat': no_decay,
            'level_embed': no_decay,
            'void_embedding': no_decay,
        },
        norm_decay_mult=0.0),  # WEIGHT_DECAY_NORM 0.0
    constructor='TrainableOptimWrapperConstructor')
# WarmupPolyLR, power 0.9, WARMUP_ITERS 0, ending at 0
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, by_epoch=False, begin=0, end=60000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=60000, val_interval=5000)  # EVAL_PERIOD
val_cfg = dict(type='ValLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
auto_scale_lr = dict(enable=False, base_batch_size=8)
# The student's CLIP head (trunk.head.norm, head) gets no gradient (regions and P go through
# backbone_t's identical frozen head), as the release's _freeze leaves it frozen.
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
