# RN101-CLIP RetinaNet, COCO 1x: box AP 40.5 (DenseCLIP README, Detection, RetinaNet; released
# config retinanet_clip_r101_fpn_1x_coco.py).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', 'mmdet::_base_/datasets/coco_detection.py',
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
