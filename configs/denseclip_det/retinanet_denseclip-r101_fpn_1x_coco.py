# RN101-DenseCLIP RetinaNet, COCO 1x: box AP 41.1 (DenseCLIP README, Detection, RetinaNet;
# released config retinanet_denseclip_r101_fpn_1x_coco.py).
_base_ = [
    '../_base_/models/denseclip_det_retinanet_r50.py', 'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/schedules/denseclip_det_1x.py', 'mmdet::_base_/default_runtime.py'
]
model = dict(
    backbone=dict(model='RN101'),  # layers=[3, 4, 23, 3], output_dim=512
    context_decoder=dict(visual_dim=512))  # text_dim=512
