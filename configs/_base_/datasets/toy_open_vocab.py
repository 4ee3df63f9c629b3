# The toy world's open-vocabulary split (denseclip/toy/world.py): methods that train see only the
# 7 seen classes (pixels of the 3 unseen ones are 255, ignored by the loss) and are evaluated on
# all 10 classes, reporting mIoU on the seen and the unseen classes and their harmonic mean
# (OpenVocabIoUMetric, denseclip/evaluation/open_vocab_metric.py). Both splits are generated
# under their data_root on first use, so no download is needed.
# Written out literally, so the config reads on its own; tests (tests/test_evaluation) check
# that they equal denseclip.toy.TOY_SEEN_CLASSES and TOY_UNSEEN_CLASSES.
seen_classes = ['red circle', 'yellow triangle', 'orange star', 'pink ring', 'sky', 'grass',
                'water']
unseen_classes = ['purple square', 'black cross', 'sand']
dataset_type = 'ToyWorldDataset'
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
        type=dataset_type,
        data_root='data/toy_world_train',
        # Training scenes: seed 1, never the evaluation split's seed 0.
        generate=dict(num_images=1000, seed=1, size=224, split='train'),
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        metainfo=dict(classes=seen_classes),  # seen classes renumbered 0-6, unseen -> 255
        pipeline=train_pipeline))
# Evaluation: the toy world's evaluation split, as in toy.py (100 scenes, seed 0), all classes.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 224), keep_ratio=True),  # the scenes' own size
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=0,  # scenes are small: loading in the main process is faster than forking
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root='data/toy_world',
        generate=dict(num_images=100, seed=0, size=224),
        pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(type='OpenVocabIoUMetric', unseen_classes=unseen_classes,
                      iou_metrics=['mIoU'])
val_evaluator = test_evaluator
test_cfg = dict(type='TestLoop')
