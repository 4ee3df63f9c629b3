# RN50-DenseCLIP Mask R-CNN, COCO 1x: box AP 40.2, mask AP 37.6 (DenseCLIP README, Detection,
# Mask R-CNN; released config mask_rcnn_denseclip_r50_fpn_1x_coco.py).
_base_ = [
    '../_base_/models/denseclip_det_mask-rcnn_r50.py', 'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/denseclip_det_1x.py', 'mmdet::_base_/default_runtime.py'
]
optim_wrapper = dict(optimizer=dict(lr=2e-4))  # lr=0.0002
