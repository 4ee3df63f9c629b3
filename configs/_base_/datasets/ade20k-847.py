# ADE20K-847 val: ADE20K-full (ADE20K_2021_17_01) validation, 847 classes, 2,000 images (short
# side at most 512), labels in uint16 .tif (65535 = ignored, the released ignore_label), as
# CAT-Seg's datasets/prepare_ade20k_full.py (or tools/dataset_converters/ade20k_847.py) writes
# them; the samples are the label files, as the release's load_sem_seg pairs them.
# LoadWideAnnotations keeps labels > 255. Keep-ratio resize to short side S (long side at most
# 2048); each method's config restates S. Labels stay at the original size.
dataset_type = 'ADE20K847Dataset'
data_root = 'data/ADE20K_2021_17_01'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadWideAnnotations'),
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
        data_prefix=dict(img_path='images_detectron2/validation',
                         seg_map_path='annotations_detectron2/validation'),
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], ignore_index=65535)
test_cfg = dict(type='TestLoop')
