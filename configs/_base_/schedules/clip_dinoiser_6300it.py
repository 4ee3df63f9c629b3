# CLIP-DINOiser's training schedule (wysoczanska/clip_dinoiser@a954aae configs/clip_dinoiser.yaml
# `train:`, train.py do_train, scheduler.py; trained_methods.md §6): AdamW on the two heads,
# lr x0.1 after 5000 iterations, ~6300 iterations in all.
optim_wrapper = dict(
    type='OptimWrapper',
    # corr_lr: 5e-5 for obj_proj; AdamW's own weight decay (0.01): the yaml sets none.
    optimizer=dict(type='AdamW', lr=5e-5, weight_decay=0.01),
    # found_lr: 1e-2 for bkg_decoder = 5e-5 * 200.
    paramwise_cfg=dict(custom_keys={'bkg_decoder': dict(lr_mult=200.0)}),
    # Only the heads enter the optimizer; the frozen CLIP and DINO are left out.
    constructor='TrainableOptimWrapperConstructor')
param_scheduler = [
    # milestones: [5000], step_lr_gamma: 0.1; scheduler.step() runs every batch, so the
    # milestone counts iterations (trained_methods.md §6).
    dict(type='MultiStepLR', by_epoch=False, milestones=[5000], gamma=0.1),
]
# epochs: 100 over ds_size: 1000 images in batches of 16 = 100 * ceil(1000 / 16) = 6300.
# Deviation: an iteration-based loop (exact resume mid-epoch); its infinite sampler draws full
# batches, so 6300 x 16 images are seen instead of 100 x 1000.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=6300)
val_cfg = None
randomness = dict(seed=0)  # seed: 0
