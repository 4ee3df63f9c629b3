# PASCAL VOC 2012 val without background: 20 classes, 1,449 images (VOC20);
# background pixels are ignored (reduce_zero_label=True).
# Layout and data_root as mmseg configs/_base_/datasets/pascal_voc12.py; the test pipeline
# is the training-free protocol's (reference notes §1.3): keep-ratio resize to short side S (long
# side at most 2048), labels at the original size. Each method's config restates S.
dataset_type = 'PascalVOC20Dataset'
data_root = 'data/VOCdevkit/VOC2012'
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
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])  # reference notes §1.6
test_cfg = dict(type='TestLoop')
