# The class-agnostic RPN for COCO OVD, trained on the 48 base classes only (the novel objects
# are unlabelled background to it): mmdet's RPN R50-FPN, 90k iterations of batch 16 (2 x 8
# GPUs), SGD 0.02, steps 60k / 80k (detectron2's 1x, as RegionCLIP's offline RPN). Its
# checkpoint is model.rpn_checkpoint of the COCO RegionCLIP configs. RegionCLIP's own zero-shot
# script uses an RPN trained on the 866 LVIS base classes (rpn_lvis_866.pth) for COCO as
# well; configs/ovd/rpn_r50-fpn_1x_lvis-base.py is that one.
#   bash tools/dist_train.sh configs/ovd/rpn_r50-fpn_1x_coco-ovd-base.py 8
_base_ = [
    '../_base_/models/rpn_r50_fpn.py',
    '../_base_/datasets/coco_ovd.py',
]
model = {{_base_.rpn}}
val_evaluator = dict(_delete_=True, type='CocoMetric',  # proposal recall, not OVDCocoMetric
                     ann_file='data/coco/annotations/ovd_ins_val2017_all.json',
                     metric='proposal', proposal_nums=(100, 300, 1000))
test_evaluator = val_evaluator
train_cfg = dict(type='IterBasedTrainLoop', max_iters=90000, val_interval=30000)
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', by_epoch=False, milestones=[60000, 80000], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=16)
