# DenseCLIP's detection schedule, 1x (raoyongming/DenseCLIP@5eda47f detection/configs/
# *_denseclip_*_fpn_1x_coco.py; trained_methods.md §1.4): AdamW, backbone x0.1, text x0, grad
# clipping 0.1, 12 epochs with steps at 8 and 11 after a 500-iteration linear warmup; 2 images
# per GPU x 8 GPUs (the dataset config's batch_size=2). A leaf sets its lr (RetinaNet 1e-4,
# Mask R-CNN 2e-4).
# denseclip registers the CLIP backbones, the DenseCLIP detectors and the constructor below.
custom_imports = dict(imports=['denseclip'], allow_failed_imports=False)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)  # total_epochs = 12
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    # warmup='linear', warmup_iters=500, warmup_ratio=0.001
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    # policy='step', step=[8, 11]
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),  # lr=0.0001, weight_decay=0.0001
    paramwise_cfg=dict(custom_keys={
        'backbone': dict(lr_mult=0.1),
        # As released; the text tower is also requires_grad=False (OpenCLIPTextEncoder
        # frozen=True), so nothing moves it (DenseCLIP issue #28), and the constructor leaves
        # it out, while gradients still reach the learned contexts through it.
        'text_encoder': dict(lr_mult=0.0),
        'norm': dict(decay_mult=0.0),  # the context decoder's norm1..norm3, as released
    }),
    clip_grad=dict(max_norm=0.1, norm_type=2),  # optimizer_config grad_clip
    # mmseg's registry holds denseclip's constructor; these configs run under mmdet's scope
    constructor='mmseg.TrainableOptimWrapperConstructor')
auto_scale_lr = dict(enable=False, base_batch_size=16)  # 8 GPUs x 2 images
