# RN101-CLIP Mask R-CNN, COCO 1x: box AP 42.2, mask AP 38.9 (DenseCLIP README, Detection, Mask
# R-CNN; released config mask_rcnn_clip_r101_fpn_1x_coco.py).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', 'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/denseclip_det_1x.py', 'mmdet::_base_/default_runtime.py'
]
model = dict(
    data_preprocessor=dict(
        mean=[122.771, 116.746, 104.094],  # CLIP's mean x 255
        std=[68.501, 66.632, 70.323]),  # CLIP's std x 255
    backbone=dict(
        _delete_=True,  # mmdet's ImageNet ResNet-50 and its init_cfg
        type='CLIPResNet',
        model='RN101',  # layers=[3, 4, 23, 3]
        pretrained='openai'))  # pretrained='pretrained/RN101.pt'
optim_wrapper = dict(optimizer=dict(lr=2e-4))  # lr=0.0002
