# Label-free training on the toy world (PixelCLIP's proof): the training scenes' own segments
# (every connected region of the label map, SegMapToMasks) stand in for SA-1B's class-agnostic
# masks; the label map is dropped before packing, so no class reaches the model. Evaluation is
# toy.py's (100 scenes, all 10 classes).
_base_ = ['./toy.py']
crop_size = (224, 224)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(896, 224), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),  # COLOR_AUG_SSD
    dict(type='SegMapToMasks'),
    dict(type='PackMaskInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root='data/toy_world_train',
        # Training scenes: seed 1, never the evaluation split's seed 0.
        generate=dict(num_images=1000, seed=1, size=224, split='train'),
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = {{_base_.test_dataloader}}
val_evaluator = {{_base_.test_evaluator}}
