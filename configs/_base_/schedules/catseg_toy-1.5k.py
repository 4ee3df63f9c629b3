# CAT-Seg's schedule (catseg_80k.py: AdamW 2e-4, CLIP q/v at x0.01, clipping at 0.01, cosine)
# shortened for the toy world on 2 CPU cores: 1500 iterations of batch 8.
_base_ = ['./catseg_80k.py']
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=1500, eta_min=0.0, by_epoch=False, begin=0, end=1500),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1500, val_interval=1500)
default_hooks = dict(checkpoint=dict(interval=500, max_keep_ckpts=2))
randomness = dict(seed=0)
