# Phrases of the toy world (denseclip/toy/world.py scene_phrases): "the red circle" and "the red
# circle on the grass" for each thing whose class occurs once in its scene, with the tight box of
# its pixels. Written next to the toy segmentation split (same data_root and generate settings,
# so both share one split) on first use.
dataset_type = 'ToyPhraseDataset'
data_root = 'data/toy_world'
test_pipeline = [dict(type='PackPhraseInputs')]
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        generate=dict(num_images=100, seed=0, size=224),
        pipeline=test_pipeline))
test_evaluator = [dict(type='BoxAccuracyMetric', iou_thr=0.5), dict(type='PointingGameMetric')]
test_cfg = dict(type='TestLoop')
