# ADE20K for training DenseCLIP and its fpn_clip baselines at crop 640: the crop-512 base with
# 640 in its pipelines (raoyongming/DenseCLIP@5eda47f segmentation/configs/_base_/datasets/
# ade20k_clip_640.py): random resize of (2048, 640) by 0.5-2.0, 640 crops; test at (2048, 640).
_base_ = ['./ade20k_denseclip-512x512.py']
crop_size = (640, 640)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # ADE20KDataset: reduce_zero_label=True
    dict(type='RandomResize', scale=(2048, 640), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 640), keep_ratio=True),
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
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
