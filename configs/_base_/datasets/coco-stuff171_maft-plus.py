# COCO-Stuff-164k (171 classes) for training MAFT+ (jiaosiyu1999/MAFT-Plus@fd12806: the
# release's mask_former_semantic mapper with detectron2's input defaults, which the MAFT+ configs
# leave as they are): short side 800 (long at most 1333), no crop, no colour augmentation,
# horizontal flip; padded to a multiple of 32 by the data preprocessor. Validation on the test
# set at the test views (short side 800, MIN_SIZE_TEST; long at most 1333).
_base_ = ['./coco-stuff171.py']
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='ResizeShortestEdge', scale=800, max_size=1333),  # MIN/MAX_SIZE_TRAIN
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=1,  # x 8 GPUs = IMS_PER_BATCH 8
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017'),
        pipeline=train_pipeline))
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
