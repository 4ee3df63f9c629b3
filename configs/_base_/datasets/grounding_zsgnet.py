# The phrase-localization benchmarks' shared settings; each split's file names its csv and
# images. Layout of pals-ttic/adapting-CLIP@d2026f3 README "Data" under data/grounding; the
# first phrase of each row is localised (eval.py), accuracy at IoU > 0.5 and the pointing game.
dataset_type = 'ZSGNetDataset'
data_root = 'data/grounding'
test_pipeline = [dict(type='PackPhraseInputs')]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, pipeline=test_pipeline))
test_evaluator = [dict(type='BoxAccuracyMetric', iou_thr=0.5), dict(type='PointingGameMetric')]
test_cfg = dict(type='TestLoop')
