# The toy world (denseclip/toy/world.py): 224x224 shapes scenes, 10 classes (6 coloured shapes,
# 4 textured stuff), no background and no ignore label. The split is generated under data_root
# on first use (ToyWorldDataset(generate=...)), so the toy configs need no download.
# The metric also reports the open-vocabulary split's seen and unseen classes (trained methods
# learn only the seen ones: toy_open_vocab.py); mIoU is IoUMetric's over all 10.
# Written out literally, so the config reads on its own; tests (tests/test_evaluation) check
# that they equal denseclip.toy.TOY_SEEN_CLASSES and TOY_UNSEEN_CLASSES.
seen_classes = ['red circle', 'yellow triangle', 'orange star', 'pink ring', 'sky', 'grass',
                'water']
unseen_classes = ['purple square', 'black cross', 'sand']
dataset_type = 'ToyWorldDataset'
data_root = 'data/toy_world'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 224), keep_ratio=True),  # the scenes' own size
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=0,  # scenes are small: loading in the main process is faster than forking
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        generate=dict(num_images=100, seed=0, size=224),
        pipeline=test_pipeline))
test_evaluator = dict(type='OpenVocabIoUMetric', unseen_classes=unseen_classes,
                      iou_metrics=['mIoU'])  # IoUMetric's mIoU (reference notes §1.6)
test_cfg = dict(type='TestLoop')
