# MAFT+'s schedule for L: the B schedule for 55k iterations (train_semantic_large.yaml MAX_ITER).
_base_ = ['./maft_plus_60k.py']
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, by_epoch=False, begin=0, end=55000),
]
train_cfg = dict(max_iters=55000)
