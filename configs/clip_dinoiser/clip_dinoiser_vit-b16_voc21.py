# CLIP-DINOiser (Wysoczańska et al., ECCV 2024), OpenCLIP ViT-B/16 (LAION-2B) with the released
# heads, on PASCAL VOC 2012 with background (VOC21).
# Settings: wysoczanska/clip_dinoiser main_eval.py@a954aae, task 'voc':
# segmentation/configs/_base_/datasets/pascal_voc12.py with configs/clip_dinoiser.yaml (reference
# notes §9).
# Published mIoU: 62.1 (paper) [mem] (reference notes §9(c), §13).
_base_ = [
    '../_base_/models/clip_dinoiser_harness.py',
    '../_base_/datasets/voc21.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        dense=dict(type='MaskCLIPAttention'),  # MaskClip.extract_v
        pretrained='laion2b_s34b_b88k',  # maskclip.yaml decode_head.pretrained
        pos_interp='size'),  # MaskClip.resize_pos_embed
    # PascalVOCDataset.CLASSES of segmentation/datasets/pascal_voc.py
    vocabulary=('{{fileDirname}}/../../denseclip/datasets/vocabularies/'
                'clip_dinoiser/cls_voc21.txt'),
    slide_crop=448,  # pascal_voc12.py test_cfg crop_size=(448, 448)
    slide_stride=224,  # pascal_voc12.py test_cfg stride=(224, 224)
    pad_to_patch=True,  # make_input_divisible
    window_softmax=True,  # slide over MaskClipHead.cls_seg probabilities
    logit_scale=100,  # MaskClipHead.cls_seg
    prob_thd=0.0,  # argmax, no threshold
    area_thd=None,
    feature_refiner=dict(
        type='CLIPDINOiserRefiner',
        in_channels=768,
        proj_channels=256,  # in_dim: 256
        gamma=0.2,  # gamma: 0.2
        apply_found=True,  # main_eval.py: apply_found for 'voc' and 'coco_object'
        found_delta=0.99,  # delta: 0.99
        checkpoint='checkpoints/clip_dinoiser/last.pt',  # the released heads (see the harness)
        guidance_block=-3),  # feats_idx: -3
    refiner=None,
)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # S = 448: pascal_voc12.py img_scale=(2048, 448)
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
