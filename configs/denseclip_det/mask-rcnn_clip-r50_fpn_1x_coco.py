# RN50-CLIP Mask R-CNN, COCO 1x: box AP 39.3, mask AP 36.8 (DenseCLIP README, Detection, Mask
# R-CNN; released config mask_rcnn_clip_r50_fpn_1x_coco.py). A stock mmdet config with CLIP's
# backbone swapped in (README, "CLIP backbones in mmdet detectors"): mmdet's Mask R-CNN R50-FPN
# with CLIPResNet through custom_imports=['denseclip'] (in the schedule), DenseCLIP's schedule.
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
        model='RN50',  # layers=[3, 4, 6, 3]; levels of 256, 512, 1024, 2048 channels
        pretrained='openai'))  # pretrained='pretrained/RN50.pt'
optim_wrapper = dict(optimizer=dict(lr=2e-4))  # lr=0.0002
