# RN50-DenseCLIP RetinaNet, COCO 1x: box AP 37.8 (DenseCLIP README, Detection, RetinaNet;
# released config retinanet_denseclip_r50_fpn_1x_coco.py).
_base_ = [
    '../_base_/models/denseclip_det_retinanet_r50.py', 'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/schedules/denseclip_det_1x.py', 'mmdet::_base_/default_runtime.py'
]
