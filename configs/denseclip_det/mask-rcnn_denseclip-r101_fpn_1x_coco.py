# RN101-DenseCLIP Mask R-CNN, COCO 1x: box AP 42.6, mask AP 39.6 (DenseCLIP README, Detection,
# Mask R-CNN; released config mask_rcnn_denseclip_r101_fpn_1x_coco.py).
_base_ = [
    '../_base_/models/denseclip_det_mask-rcnn_r50.py', 'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/denseclip_det_1x.py', 'mmdet::_base_/default_runtime.py'
]
model = dict(
    backbone=dict(model='RN101'),  # layers=[3, 4, 23, 3], output_dim=512
    context_decoder=dict(visual_dim=512))  # text_dim=512
optim_wrapper = dict(optimizer=dict(lr=2e-4))  # lr=0.0002
