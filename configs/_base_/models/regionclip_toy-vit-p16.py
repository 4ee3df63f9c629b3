# The zero-shot detector with a ViT: the toy CLIP's dense joint-space map (any training-free
# dense method: NACLIP here, its toy harness's sigma 5) pooled in each proposal with RoIAlign
# (7x7, averaged), then RegionCLIP's classifier and scoring (regionclip_rn50-c4.py): cosine
# with the toy templates' text embeddings, zero background, T = 0.01, geometric mean with the
# objectness of the toy RPN (rpn_toy-vit-p16.py), per-class NMS 0.5, score > 0.001, 100 boxes.
_base_ = ['./rpn_toy-vit-p16.py']
model = dict(
    type='RegionCLIPDetector',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=None, std=None, bgr_to_rgb=True,
                           pad_size_divisor=32),
    backbone=dict(type='CLIPViT', model={{_base_.toy_clip_model}},
                  pretrained={{_base_.toy_clip_weights}},
                  dense=dict(type='NACLIPAttention', sigma=5.0)),
    vocabulary=None,
    templates={{_base_.toy_templates}},
    proposal_source='rpn',
    rpn={{_base_.rpn}},
    rpn_checkpoint=None,
    roi_size=7,
    temperature=0.01,
    objectness='logit',
    use_box_deltas=False,
    test_cfg=dict(score_thr=0.001, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
custom_hooks = [dict(type='DetVocabularyCheckHook')]
