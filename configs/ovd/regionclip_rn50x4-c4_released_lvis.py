# RegionCLIP's released LVIS transfer model (regionclip_finetuned-lvis_rn50x4.pth) with its LSJ
# FPN RPN (rpn_lvis_866_lsj.pth), converted by tools/model_converters/regionclip.py; as the
# released test_transfer_learning.sh: MULTIPLY_RPN_SCORE True (the raw logit), score > 0.02,
# 300 boxes, Gaussian soft-NMS. Published (RegionCLIP MODEL_ZOO): APr 22.0, AP 32.3.
#   python tools/test.py configs/ovd/regionclip_rn50x4-c4_released_lvis.py \
#       --checkpoint checkpoints/regionclip_finetuned-lvis_rn50x4_mmdet.pth
_base_ = [
    '../_base_/models/regionclip_rn50-c4.py',
    '../_base_/models/rpn_r50-fpn-lsj_detectron2.py',
    '../_base_/datasets/lvis_ovd.py',
]
model = dict(
    backbone=dict(model='RN50x4'),
    roi_size=18,  # POOLER_RESOLUTION 18 for RN50x4
    vocabulary={{_base_.vocabulary}},
    rpn={{_base_.rpn_fpn_lsj}},
    rpn_checkpoint='checkpoints/rpn_lvis_866_lsj_mmdet.pth',
    use_box_deltas=True,
    objectness='logit',
    test_cfg=dict(score_thr=0.02, max_per_img=300,
                  nms=dict(type='soft_nms', method='gaussian', sigma=0.5, min_score=0.001,
                           iou_threshold=0.5)))
train_dataloader = None  # evaluation of the released model
