# PixelCLIP's schedule (pixelclip_10k.py: AdamW 2e-4, image tower x0.01, names x10, clipping at
# 0.01, cosine to half) shortened for the toy world on 2 CPU cores: 200 iterations of batch 8,
# the training-free mIoU measured every 50.
_base_ = ['./pixelclip_10k.py']
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=200, eta_min_ratio=0.5, by_epoch=False, begin=0,
         end=200),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=200, val_interval=50)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=200, max_keep_ckpts=1))
randomness = dict(seed=0)
