# A CPU-minutes schedule for the toy detectors: DenseCLIP's detection optimiser (AdamW, backbone
# x0.1, text x0, clipping 0.1; denseclip_det_1x.py) at a toy learning rate, 400 iterations of
# 8 scenes with a short warmup (the loops of val and test come with the dataset config).
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400, val_interval=400)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=400, by_epoch=False, milestones=[300], gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={
        'backbone': dict(lr_mult=0.1),
        'text_encoder': dict(lr_mult=0.0),
        'norm': dict(decay_mult=0.0),
    }),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    constructor='mmseg.TrainableOptimWrapperConstructor')
