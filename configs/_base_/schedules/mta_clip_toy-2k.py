# MTA-CLIP's schedule (mta_clip_160k.py) shortened for the toy world on 2 CPU cores.
# Deviation: 2000 iterations of batch 8 with a 100-iteration warmup at lr 2e-4, instead of 160k
# with 1500 at 1e-4 (the same AdamW, multipliers, clipping and poly decay).
_base_ = ['./mta_clip_160k.py']
optim_wrapper = dict(optimizer=dict(lr=2e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=0, power=0.9, by_epoch=False, begin=100, end=2000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2000, val_interval=2000, val_begin=0)
default_hooks = dict(checkpoint=dict(interval=500, max_keep_ckpts=2, save_best=None))
randomness = dict(seed=0)
