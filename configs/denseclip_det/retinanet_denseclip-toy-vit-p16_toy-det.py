# The toy proof: a DenseCLIP RetinaNet on the toy CLIP ViT, trained on the boxes of all six toy
# things (closed set) and evaluated with mmdet's COCO metric (plus AP50 on the novel / base
# things, for comparison with the zero-shot detector, which never saw the novel ones).
_base_ = [
    '../_base_/models/denseclip_det_toy-vit-p16.py', '../_base_/datasets/toy_det.py',
    '../_base_/schedules/denseclip_det_toy-400it.py'
]
train_dataloader = dict(dataset=dict(metainfo=dict(classes={{_base_.classes}})))
default_hooks = dict(logger=dict(type='LoggerHook', interval=50),
                     checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=400))
log_processor = dict(by_epoch=False)
