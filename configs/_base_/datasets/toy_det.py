# Instances of the toy world (denseclip/toy/instances.py) as an open-vocabulary detection
# benchmark in mmdet: the six things with boxes and masks (COCO format, categories 1-6), the
# stuff is background. Training sees the four base things only (the annotations of the two
# novel ones are left out, their objects unlabelled, as in COCO OVD's base split); evaluation
# has all six and reports box AP50 on the novel and the base classes (OVDCocoMetric). The novel
# things are the segmentation split's unseen ones (toy_open_vocab.py). Both splits, and their
# annotations/instances_{split}.json, are generated under data_root on first use; the same
# data_root and settings as toy.py / toy_open_vocab.py share one split on disk.
# Written out literally; tests check them against denseclip.toy.instances.
default_scope = 'mmdet'
custom_imports = dict(imports=['denseclip'], allow_failed_imports=False)
classes = ['red circle', 'yellow triangle', 'purple square', 'orange star', 'pink ring',
           'black cross']
base_classes = ['red circle', 'yellow triangle', 'orange star', 'pink ring']
novel_classes = ['purple square', 'black cross']
dataset_type = 'ToyDetDataset'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(224, 224), keep_ratio=True),  # the scenes' own size
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(224, 224), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(
        type=dataset_type,
        data_root='data/toy_world_train',
        # Training scenes: seed 1, never the evaluation split's seed 0 (toy_open_vocab.py's).
        generate=dict(num_images=1000, seed=1, size=224, split='train'),
        metainfo=dict(classes=base_classes),
        filter_cfg=dict(filter_empty_gt=True),  # scenes with novel things only are left out
        pipeline=train_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root='data/toy_world',
        generate=dict(num_images=100, seed=0, size=224, split='val'),
        metainfo=dict(classes=classes),
        test_mode=True,
        pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(
    type='OVDCocoMetric',
    ann_file='data/toy_world/annotations/instances_val.json',
    metric='bbox',
    novel_classes=novel_classes,
    base_classes=base_classes)
val_evaluator = test_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
