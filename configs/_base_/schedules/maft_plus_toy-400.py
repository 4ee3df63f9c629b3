# MAFT+'s schedule (maft_plus_60k.py: AdamW, wd 2e-5, trunk at x0.1, full-model clipping at 0.01,
# poly decay) shortened for the toy world on 2 shared CPU cores.
# Deviation: 400 iterations of batch 4 at lr 3e-4, fp32 (AMP is for CUDA), instead of 60k of
# batch 8 at 1e-4 with AMP.
_base_ = ['./maft_plus_60k.py']
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(lr=3e-4))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, by_epoch=False, begin=0, end=400),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400, val_interval=400)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=400, max_keep_ckpts=1))
randomness = dict(seed=0)
