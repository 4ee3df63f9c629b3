# RegionCLIP's zero-shot detector, C4 (microsoft/RegionCLIP@4b8513b
# CLIP_fast_rcnn_R_50_C4_ovd_zsinf.yaml, reference notes §7.1): CLIP RN50 to res4 (stride 16),
# RoIAlignV2 14x14, res5 + the attention pool per box, cosine with the text classifier and a
# zero background embedding at T = 0.01, geometric mean with the RPN objectness
# (MULTIPLY_RPN_SCORE True: the released code takes the raw logit), boxes = proposals
# (NO_BOX_DELTA True), per-class NMS 0.5, score > 0.001, 100 detections (COCO).
# Images: short side 800, max 1333, CLIP's mean / std (applied by the detector; the data
# preprocessor only pads, so the RPN can apply its own).
_base_ = ['./rpn_r50_fpn.py']
model = dict(
    type='RegionCLIPDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=None, std=None, bgr_to_rgb=True,
                           pad_size_divisor=32),
    backbone=dict(type='CLIPResNet', model='RN50', pretrained='openai'),
    vocabulary=None,  # each dataset config names its classes
    templates='openai_imagenet',
    proposal_source='rpn',
    rpn={{_base_.rpn}},
    rpn_checkpoint=None,  # set to the base-class RPN's checkpoint
    roi_size=14,  # POOLER_RESOLUTION 14 (RN50x4: 18)
    temperature=0.01,  # CLSS_TEMP
    objectness='logit',  # MULTIPLY_RPN_SCORE with detectron2's objectness_logits
    use_box_deltas=False,  # NO_BOX_DELTA True
    frozen_stages=2,  # FREEZE_AT 2 (transfer)
    test_cfg=dict(score_thr=0.001, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
custom_hooks = [dict(type='DetVocabularyCheckHook')]
