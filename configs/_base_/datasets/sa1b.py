# SA-1B for PixelCLIP (cvlab-kaist/PixelCLIP@42f5c9c data/dataset_mappers/sa1b_dataset_mapper.py,
# datasets/prepare_sa1b.py, configs/pixelclip_vit_base.yaml INPUT; trained_methods.md §4.1):
# the shards listed in the repository's datasets/sa1b.txt (5% of SA-1B), images and masks
# downscaled by 2, unpacked to data/sa1b/images/sa_000000/sa_1.jpg + sa_1.json ... Masks only:
# no class label exists or is read. Validation: ADE20K-150 (the released DATASETS.TEST).
_base_ = ['./ade20k.py']
crop_size = (640, 640)  # INPUT.CROP.SIZE
sa1b_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSA1BMasks', max_masks=512),  # MODEL.MAX_MASKS, largest first
    # MIN_SIZE_TRAIN 1024 (short side), MAX_SIZE_TRAIN 1333 (detectron2 default)
    dict(type='Resize', scale=(1333, 1024), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),  # SINGLE_CATEGORY_MAX_AREA 1.0: no check
    dict(type='PhotoMetricDistortion'),  # COLOR_AUG_SSD
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackMaskInputs'),
]
train_dataloader = dict(
    batch_size=12,  # IMS_PER_BATCH 48 on 4 GPUs
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='SA1BDataset',
        data_root='data/sa1b',
        data_prefix=dict(img_path='images'),  # each sa_<id>.json next to its image
        ann_suffix='.json',
        pipeline=sa1b_train_pipeline))
# MIN_SIZE_TEST 640, MAX_SIZE_TEST 2560
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(2560, 640), keep_ratio=True),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs'),
        ]))
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
# the training run's test split is its validation split (ADE20K-150 at MIN_SIZE_TEST 640)
test_dataloader = val_dataloader
test_evaluator = val_evaluator
