# ADE20K val: 150 classes, 2,000 images (ADE); 0 = "other" is ignored
# (reduce_zero_label=True).
# Layout and data_root as mmseg configs/_base_/datasets/ade20k.py; the test pipeline
# is the training-free protocol's (reference notes §1.3): keep-ratio resize to short side S (long
# side at most 2048), labels at the original size. Each method's config restates S.
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
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
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])  # reference notes §1.6
test_cfg = dict(type='TestLoop')
