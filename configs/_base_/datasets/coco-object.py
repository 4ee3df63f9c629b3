# COCO-Object: COCO 2017 val, background + 80 things, 5,000 images (Object);
# labels from tools/dataset_converters/coco_object.py (*_instanceTrainIds.png).
# Images and data_root as mmseg configs/_base_/datasets/coco-stuff164k.py; the test pipeline
# is the training-free protocol's (reference notes §1.3): keep-ratio resize to short side S (long
# side at most 2048), labels at the original size. Each method's config restates S.
dataset_type = 'COCOObjectDataset'
data_root = 'data/coco_stuff164k'
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
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])  # reference notes §1.6
test_cfg = dict(type='TestLoop')
