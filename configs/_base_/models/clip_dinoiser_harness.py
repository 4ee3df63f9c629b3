# The CLIP-DINOiser harness (wysoczanska/clip_dinoiser main_eval.py@a954aae with
# configs/clip_dinoiser.yaml, configs/maskclip.yaml and segmentation/configs/_base_/datasets;
# reference notes §9): OpenCLIP ViT-B/16 laion2b_s34b_b88k with MaskCLIP's last block (value
# path, residual and FFN kept), size-based position-embedding interpolation, each window's
# features pooled with the correlations the trained 3x3 conv predicts from block 10's LN2
# output (gamma 0.2), 80 ImageNet templates, softmax(100 cos) per window, 448/224 windows (mmseg
# slide) whose probabilities are averaged; the FOUND-trained background head on VOC21 and
# COCO-Object only. CLIP runs in fp32 there too (create_model_from_pretrained's default).
# Deviation: make_input_divisible pads a window right/bottom with black pixels to a multiple of
# 16 and stretches the padded grid's output back over the window; we zero-pad the normalised
# window centred (the mean colour) and cut the padding off. At S = 448 every window is 448x448
# and neither pads, unless an image's aspect ratio exceeds 2048:448.
# S, the short side of the Python API and the demos (method='clip_dinoiser'): pascal_voc12.py / pascal_context.py img_scale=(2048, 448).
# Each benchmark config states its dataset's S in its test_pipeline.
short_side = 448
model = dict(
    type='OpenVocabSegmentor',
    backbone=dict(
        type='CLIPViT',
        model='ViT-B-16',  # maskclip.yaml clip_model: plain GELU, as trained
        pretrained='laion2b_s34b_b88k',  # maskclip.yaml decode_head.pretrained
        dense=dict(type='MaskCLIPAttention'),  # MaskClip.extract_v
        pos_interp='size'),  # MaskClip.resize_pos_embed: bicubic to the target grid
    vocabulary=None,  # each dataset config names its class-name file
    name_sep=', ',  # one name a line: no line has a separator
    templates='openai_imagenet',  # maskclip.yaml use_templates: True -> imagenet_templates
    logit_scale=100.0,  # MaskClipHead.cls_seg: softmax(100 * cos)
    prob_thd=0.0,
    area_thd=None,
    slide_crop=448,  # test_cfg crop_size=(448, 448)
    slide_stride=224,  # test_cfg stride=(224, 224)
    pad_to_patch=True,  # make_input_divisible
    # mmseg slide_inference averages the softmaxed cls_seg outputs of the windows
    window_softmax=True,
    feature_refiner=dict(
        type='CLIPDINOiserRefiner',
        in_channels=768,  # in_size for feats_idx != 'final'
        proj_channels=256,  # clip_dinoiser.yaml in_dim: 256
        gamma=0.2,  # clip_dinoiser.yaml gamma: 0.2
        apply_found=False,  # main_eval.py: True for 'voc' and 'coco_object' only
        found_delta=0.99,  # clip_dinoiser.yaml delta: 0.99
        # The released heads, checkpoints/last.pt in wysoczanska/clip_dinoiser (main_eval.py
        # check_path), saved here relative to the working directory; or a heads file of
        # configs/clip_dinoiser/clip_dinoiser_vit-b16_train.py.
        checkpoint='checkpoints/clip_dinoiser/last.pt',
        guidance_block=-3),  # clip_dinoiser.yaml feats_idx: -3
    refiner=None)
