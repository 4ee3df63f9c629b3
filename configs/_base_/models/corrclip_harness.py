# The CorrCLIP harness (zdk258/CorrCLIP@103bc18, CorrCLIPv1/: corrclip_segmentor.py
# CorrCLIPSegmentation defaults with configs/base_config.py, and open_clip/transformer.py
# VisionTransformer.forward; reference notes §12): MetaCLIP ViT-B/16 (QuickGELU) whose last block
# attends with DINO ViT-B/8's last-block (q+k) correlations, sharpened by 1/τ = 4 and restricted
# to mask regions (merged by DBSCAN, ε 0.2), fused with the mean of blocks 5-9 and with mask class
# tokens (α 1.0, β 0.5); 80 ImageNet templates, synonyms split on '; ', 336/112 windows
# zero-padded (centred) to a multiple of 56, logit scale 40, then the per-region mode of the
# labels (map correction). No PAMR.
# Masks: segment-anything's automatic generator, SAM2 (Hiera-L) when the sam2 package imports,
# else SAM ViT-H (segment-anything 1.0, which keeps 3 masks per point prompt: no
# multimask_output=False there); SAMMaskGenerator.backend says which ran. Both need their
# weights file (below); masks are cached per image on disk ($DENSECLIP_CACHE_DIR/masks).
# Deviations (denseclip/models/dense/corrclip.py): region 0 (not the window's smallest label) is
# the unsegmented one; padding is a region of its own; masks from the resized input; fp32.
# S, the short side of the Python API and the demos (method='corrclip'): the VOC/Context/Object
# configs' 336. Each benchmark config states its dataset's S in its test_pipeline.
short_side = 336
model = dict(
    type='CorrCLIPSegmentor',
    backbone=dict(
        type='CLIPViT',
        # base_config.py: model_type='ViT-B-16-quickgelu', clip_type='metaclip_fullcc'
        model='ViT-B-16-quickgelu',
        pretrained='metaclip_fullcc',
        dense=dict(
            type='CorrCLIPAttention',
            # base_config.py dino_type='dino_vitb8' (torch.hub); timm's
            # vit_base_patch8_224.dino holds the same weights (notes §16). Offline:
            # pretrained='/path/to/model.safetensors' of that hub entry.
            proxy=dict(type='DINOProxy', model='vit_base_patch8_224.dino', pretrained='timm',
                       pos_interp='scale_factor'),  # dino interpolate_pos_encoding (+0.1)
            tau=0.25,  # transformer.py: TAU = 4 multiplies the similarities
            merge_eps=0.2,  # transformer.py: EPS, MIN_SAMPLES = 0.2, 1 (DBSCAN)
            alpha=1.0,  # transformer.py: ALPHA, BETA = 1.0, 0.5
            beta=0.5,
            num_spatial=5),  # transformer.py: NUM_SPATIAL = 5 for 12 blocks
        pos_interp='scale_factor'),  # transformer.py interpolate_pos_encoding (+0.1)
    mask_generator=dict(
        type='SAMMaskGenerator',
        backend='auto',  # sam2 if `import sam2` works, else segment-anything (SAM)
        # corrclip_segmentor.py set_mask_generator: build_sam2('sam2_hiera_l.yaml',
        # 'sam2_hiera_large.pt', apply_postprocessing=False)
        sam2_config='sam2_hiera_l.yaml',
        sam2_checkpoint='checkpoints/sam2_hiera_large.pt',
        # fallback without sam2: SAM ViT-H, our choice (the largest SAM, as Hiera-L is SAM2's)
        sam_type='vit_h',
        sam_checkpoint='checkpoints/sam_vit_h_4b8939.pth',
        # The published numbers (README table, row SAM2_32) use the released pre-generated
        # masks, 32 points per side; set_mask_generator's on-the-fly setting is 8 (row SAM2_8:
        # 50.4 average against 51.0).
        points_per_side=32,
        points_per_batch=64,  # SAM2AutomaticMaskGenerator default: 64 point prompts a batch
        pred_iou_thresh=0.4,  # set_mask_generator
        stability_score_thresh=0.4,  # set_mask_generator
        multimask_output=False,  # set_mask_generator (SAM2 only)
        cache_dir=None),  # $DENSECLIP_CACHE_DIR/masks, else ~/.cache/denseclip/masks
    map_correction=True,  # postprocess_result: "Map Correction"
    vocabulary=None,  # each dataset config names its class-name file
    name_sep='; ',  # get_cls_idx splits lines on '; '
    templates='openai_imagenet',  # prompts/imagenet_template.py openai_imagenet_template
    logit_scale=40.0,  # CorrCLIPSegmentation default
    prob_thd=0.0,  # CorrCLIPSegmentation default
    area_thd=None,
    slide_crop=336,  # CorrCLIPSegmentation default
    slide_stride=112,  # CorrCLIPSegmentation default
    pad_to_patch=True,  # forward_slide: compute_padsize(H, W, 56)
    pad_multiple=56,
    refiner=None)
