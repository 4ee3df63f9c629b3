# RegionCLIP zero-shot inference on LVIS v1 (CLIP_fast_rcnn_R_50_C4_zsinf.yaml with RN50x4:
# RESNETS.DEPTH 200, POOLER_RESOLUTION 18, TEXT_EMB_DIM 640): the proposals of the RPN trained
# on the 866 LVIS base classes, the 1203 class names (with synonyms), score > 0.02 (the LVIS
# base config; the GT-box script uses 1e-4), 300 boxes per image; mmdet's LVISMetric (APr).
#   python tools/test.py configs/ovd/regionclip_rn50x4-c4_zs_lvis.py \
#       --cfg-options model.rpn_checkpoint=work_dirs/rpn_r50-fpn_1x_lvis-base/iter_90000.pth
_base_ = [
    '../_base_/models/regionclip_rn50-c4.py',
    '../_base_/datasets/lvis_ovd.py',
]
model = dict(
    backbone=dict(model='RN50x4'),
    roi_size=18,
    vocabulary={{_base_.vocabulary}},
    rpn_checkpoint='work_dirs/rpn_r50-fpn_1x_lvis-base/iter_90000.pth',
    test_cfg=dict(score_thr=0.02, max_per_img=300))
train_dataloader = None  # zero-shot: nothing is trained
