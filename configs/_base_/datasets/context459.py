# PASCAL-Context-459 val: 459 classes, the 5,104 ids of CAT-Seg's datasets/pascalcontext_val.txt,
# labels in 16-bit .tif (the 459-label map minus one; every pixel labelled), as CAT-Seg's
# datasets/prepare_pascal_context_459.py (or tools/dataset_converters/pascal_context_459.py)
# writes them. The samples are the label files (JPEGImages holds all of VOC2010), as the
# release's load_sem_seg pairs them. LoadWideAnnotations keeps labels > 255; 459 is the released
# ignore label (never present). Keep-ratio resize to short side S (long side at most 2048); each
# method restates S. Labels stay at the original size.
dataset_type = 'PascalContext459Dataset'
data_root = 'data/VOCdevkit/VOC2010'
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
        data_prefix=dict(img_path='JPEGImages', seg_map_path='annotations_detectron2/pc459_val'),
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], ignore_index=459)
test_cfg = dict(type='TestLoop')
