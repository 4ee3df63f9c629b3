# CLIP ViT-B/16 in a stock mmdet Mask R-CNN (README, "CLIP backbones in mmdet detectors"; not
# a row of DenseCLIP's table, which has no ViT detector): the ViT's last map (stride 16) becomes
# a ViTDet-style simple feature pyramid, strides 4-64, with mmseg's MultiLevelNeck (1x1 lateral
# conv, bilinear rescale, 3x3 conv per level) in place of the FPN. DenseCLIP's schedule.
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
        type='CLIPViT',
        model='ViT-B-16',
        pretrained='openai',
        out_indices=(-1, )),  # the last block's patch map, (B, 768, H/16, W/16)
    neck=dict(
        _delete_=True,  # the FPN over four ResNet stages
        type='mmseg.MultiLevelNeck',
        in_channels=[768],
        out_channels=256,
        scales=[4, 2, 1, 0.5, 0.25]))  # strides 4, 8, 16, 32, 64: the RPN's anchor strides
optim_wrapper = dict(optimizer=dict(lr=2e-4))
