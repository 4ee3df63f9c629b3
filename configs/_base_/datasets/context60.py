# PASCAL Context val with background: 60 classes, 5,105 images (PC60).
# Layout and data_root as mmseg configs/_base_/datasets/pascal_context.py; the test pipeline
# is the training-free protocol's (reference notes §1.3): keep-ratio resize to short side S (long
# side at most 2048), labels at the original size. Each method's config restates S.
dataset_type = 'PascalContextDataset'
data_root = 'data/VOCdevkit/VOC2010/'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        ann_file='ImageSets/SegmentationContext/val.txt',
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])  # reference notes §1.6
test_cfg = dict(type='TestLoop')
