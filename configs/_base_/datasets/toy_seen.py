# The toy open-vocabulary split scored on the seen classes alone: the evaluation scenes with
# the 7 seen classes renumbered as in training and unseen pixels ignored (255), for closed-set
# models (the fpn_clip baseline, DenseCLIP's decoder), whose classifiers have 7 outputs.
_base_ = ['./toy_open_vocab.py']
test_dataloader = dict(dataset=dict(metainfo=dict(classes={{_base_.seen_classes}})))
val_dataloader = test_dataloader
test_evaluator = dict(_delete_=True, type='IoUMetric', iou_metrics=['mIoU'])  # no unseen ones
val_evaluator = test_evaluator
