# RegionCLIP zero-shot inference on COCO OVD (CLIP_fast_rcnn_R_50_C4_ovd_zsinf.yaml, "RN50, RPN,
# COCO" of test_zeroshot_inference.sh): proposals of the base-class RPN, CLIP RN50 C4 region
# embeddings, the 65 class names with the 80 ImageNet templates, rescoring by the RPN
# objectness logit, per-class NMS 0.5, score > 0.001, 100 boxes. OpenAI CLIP weights give the
# "CLIP-RPN" baseline; RegionCLIP's own pretrained RN50 needs its weights converted.
#   python tools/test.py configs/ovd/regionclip_rn50-c4_zs_coco-ovd.py \
#       --cfg-options model.rpn_checkpoint=work_dirs/rpn_r50-fpn_1x_coco-ovd-base/iter_90000.pth
_base_ = [
    '../_base_/models/regionclip_rn50-c4.py',
    '../_base_/datasets/coco_ovd.py',
]
model = dict(vocabulary={{_base_.classes}},
             rpn_checkpoint='work_dirs/rpn_r50-fpn_1x_coco-ovd-base/iter_90000.pth')
train_dataloader = None  # zero-shot: nothing is trained
