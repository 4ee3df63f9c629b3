# RN50-CLIP RetinaNet, COCO 1x: box AP 36.9 (DenseCLIP README, Detection, RetinaNet; released
# config retinanet_clip_r50_fpn_1x_coco.py): mmdet's RetinaNet R50-FPN with CLIP's RN50 as the
# backbone (no text), trained with DenseCLIP's schedule.
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
        model='RN50',  # layers=[3, 4, 6, 3]
        pretrained='openai'))  # pretrained='pretrained/RN50.pt'
