# RegionCLIP's released COCO OVD transfer model (regionclip_finetuned-coco_rn50.pth) with its
# offline C4 RPN (rpn_coco_48.pth), both converted by tools/model_converters/regionclip.py;
# evaluated as the released test_transfer_learning.sh: no RPN rescoring (MULTIPLY_RPN_SCORE
# default False in CLIP_fast_rcnn_R_50_C4_ovd.yaml), deltas applied, Gaussian soft-NMS (sigma
# 0.5, prune 0.001), 100 boxes. Published (RegionCLIP MODEL_ZOO): novel AP50 31.4, all 50.4.
#   python tools/test.py configs/ovd/regionclip_rn50-c4_released_coco-ovd.py \
#       --checkpoint checkpoints/regionclip_finetuned-coco_rn50_mmdet.pth
_base_ = [
    '../_base_/models/regionclip_rn50-c4.py',
    '../_base_/models/rpn_r50-c4_detectron2.py',
    '../_base_/datasets/coco_ovd.py',
]
model = dict(
    vocabulary={{_base_.classes}},
    rpn={{_base_.rpn_c4}},
    rpn_checkpoint='checkpoints/rpn_coco_48_mmdet.pth',
    use_box_deltas=True,  # NO_BOX_DELTA False
    objectness=None,
    test_cfg=dict(nms=dict(type='soft_nms', method='gaussian', sigma=0.5, min_score=0.001,
                           iou_threshold=0.5)))
train_dataloader = None  # evaluation of the released model
