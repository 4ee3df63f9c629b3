# LVIS v1 open-vocabulary detection, the frequency split (ViLD; RegionCLIP's LVIS rows): the
# 866 frequent and common classes are base, the 337 rare ones novel. Training sees the base
# annotations only (annotations/lvis_v1_train_norare.json); evaluation all 1203 classes on
# lvis_v1_val.json, with mmdet's LVISMetric reporting APr (rare = novel), APc, APf and AP.
# Written by
#   python tools/dataset_converters/lvis_ovd.py data/lvis
# from lvis_v1_{train,val}.json, with the class-name file annotations/lvis_v1_ovd_names.txt
# (one class a line, the LVIS name and its synonyms with '_' as spaces, for the text side).
# Needs the lvis API (pip install lvis). Images: COCO 2017 train/val under data_root.
default_scope = 'mmdet'
custom_imports = dict(imports=['denseclip'], allow_failed_imports=False)
dataset_type = 'LVISV1Dataset'
data_root = 'data/lvis/'
vocabulary = data_root + 'annotations/lvis_v1_ovd_names.txt'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomChoiceResize', scales=[(1333, s) for s in range(640, 801, 32)],
         keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        # RegionCLIP: RepeatFactorTrainingSampler, REPEAT_THRESHOLD 0.001
        type='ClassBalancedDataset',
        oversample_thr=1e-3,
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            ann_file='annotations/lvis_v1_train_norare.json',
            data_prefix=dict(img=''),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline)))
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/lvis_v1_val.json',
        data_prefix=dict(img=''),
        test_mode=True,
        pipeline=test_pipeline))
val_dataloader = test_dataloader
test_evaluator = dict(type='LVISMetric', ann_file=data_root + 'annotations/lvis_v1_val.json',
                      metric='bbox')
val_evaluator = test_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
