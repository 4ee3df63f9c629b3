# The toy world's open-vocabulary split (denseclip/toy/world.py): methods that train see only the
# 7 seen classes (pixels of the 3 unseen ones are 255, ignored by the loss) and are evaluated on
# all 10 classes, reporting mIoU on the seen and the unseen classes and their harmonic mean
# (OpenVocabIoUMetric, denseclip/evaluation/open_vocab_metric.py). Both splits are generated
# under their data_root on first use, so no download is needed.
# The evaluation split and the seen / unseen lists are toy.py's.
_base_ = ['./toy.py']
crop_size = (224, 224)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # applies the dataset's label map: unseen -> 255
    dict(type='RandomResize', scale=(896, 224), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
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
        # seen classes renumbered 0-6, unseen -> 255
        metainfo=dict(classes={{_base_.seen_classes}}),
        pipeline=train_pipeline))
val_dataloader = {{_base_.test_dataloader}}
val_evaluator = {{_base_.test_evaluator}}
