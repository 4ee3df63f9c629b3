# COCO-Stuff-164k (171 classes) for training CAT-Seg (KU-CVLAB/CAT-Seg@6d3a188
# mask_former_semantic_dataset_mapper.py with configs/config.yaml INPUT): short side 384 (long at
# most 1333, detectron2's MAX_SIZE_TRAIN), 384x384 random crop with SINGLE_CATEGORY_MAX_AREA 1.0
# (no constraint), SSD colour augmentation, horizontal flip. Validation as CAT-Seg's test views
# (the model's resize_to / windows; short side 640 first, MIN_SIZE_TEST 640, MAX_SIZE_TEST 2560).
_base_ = ['./coco-stuff171.py']
crop_size = (384, 384)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='ResizeShortestEdge', scale=384, max_size=1333),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='PhotoMetricDistortion'),  # ColorAugSSDTransform's deltas are mmseg's defaults
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=1,  # x 4 GPUs = IMS_PER_BATCH 4 (tools/dist_train.sh CONFIG 4)
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017'),
        pipeline=train_pipeline))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
# Validation on the test set with this pipeline, written out: mmengine merges a partial dict only
# into a key the base defines, and the base defines test_dataloader alone.
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
val_evaluator = {{_base_.test_evaluator}}
