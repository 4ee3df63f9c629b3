# DenseCLIP's schedule (denseclip_80k.py) shortened for the toy world on 2 CPU cores.
# Deviation: 3000 iterations of batch 8 with a 100-iteration warmup at lr 2e-4 instead of 80k
# with 1500 at 1e-4 (the same AdamW, multipliers and poly decay): at 1e-4, 2000 iterations
# gave 90.8 mIoU on the seen classes. ~13 min for the toy DenseCLIP.
_base_ = ['./denseclip_80k.py']
optim_wrapper = dict(optimizer=dict(lr=2e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False, begin=100, end=3000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=3000, val_interval=3000)
default_hooks = dict(checkpoint=dict(interval=500, max_keep_ckpts=2))
randomness = dict(seed=0)
