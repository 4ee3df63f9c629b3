# The Trident harness (YuHengsss/Trident trident.py@a93b346 Trident defaults with
# configs/base_config.py; reference notes §12, §7): OpenAI ViT-B/16 whose last block, per
# 336-pixel window (stride 224), attends with DINO ViT-B/16's patch-feature similarities
# (ProxyCLIP's proxy attention, beta 1.2, gamma 3.0, one beta*mean over all windows of an
# image); the windows' tokens are spliced on the whole image's grid and aggregated with SAM
# ViT-B's last-block attention, masked where SAM's value cosine is below cos_fac x its mean
# (cos_fac 1.2), before ln_post and proj; scores at SAM's grid; 80 ImageNet templates, logit
# scale 40, synonyms split on '; ', no PAMR. SAM prompt refinement (seg_utils/utils.py
# sam_refinement) is off, as base_config.py sets it; eval.py's --sam_refine turns it on, and the
# released eval commands (README, dist_test.sh for eval_all.py) pass it. With it on, the whole
# SAM (prompt encoder, mask decoder) is built from the same model_type and checkpoint.
# Deviation: the reference runs CLIP, DINO and SAM in fp16 on CUDA; we run fp32. SAM sees the
# pipeline-resized image, not the file re-read from disk (denseclip/models/dense/trident.py).
# S, the short side of the Python API and the demos (method='trident'): Trident's VOC21, Object
# and Stuff configs: short side 448. Each benchmark config states its dataset's S.
short_side = 448
model = dict(
    type='TridentSegmentor',
    backbone=dict(
        type='CLIPViT',
        model='ViT-B-16',  # base_config.py model_type='ViT-B/16'
        pretrained='openai',  # base_config.py clip_type='openai': QuickGELU
        dense=dict(
            type='TridentAttention',
            # trident.py: torch.hub.load('facebookresearch/dino:main', 'dino_vitb16'),
            # get_intermediate_layers (normed last layer); timm's vit_base_patch16_224.dino
            # holds the same weights. Offline: pretrained='/path/to/model.safetensors'.
            proxy=dict(type='DINOProxy', model='vit_base_patch16_224.dino', pretrained='timm',
                       pos_interp='scale_factor'),  # dino interpolate_pos_encoding (+0.1)
            beta=1.2,  # base_config.py
            gamma=3.0),  # trident.py Trident default (base_config.py sets none)
        pos_interp='scale_factor'),  # open_clip/transformer.py interpolate_pos_encoding (+0.1)
    # base_config.py sam_model_type='vit_b', sam_ckpt (sam_vit_b_01ec64.pth of
    # facebookresearch/segment-anything); the file must exist: pass sam=dict(...) to change it
    sam=dict(type='SAMProxy', model_type='vit_b',
             checkpoint='checkpoints/sam_vit_b_01ec64.pth'),
    cos_fac=1.2,  # base_config.py
    refine_neg_cos=True,  # base_config.py
    sam_splits=1,  # trident.py get_trident_seg: one SAM pass but on Cityscapes
    # base_config.py sam_refinement=False; eval.py sets cfg.model.sam_refinement from
    # --sam_refine, and the values below are then the ones it runs with (each dataset config
    # carries its cfg_*.py coarse_thresh)
    sam_refinement=False,
    coarse_thresh=0.2,  # base_config.py (trident.py default 0.10)
    minimal_area=225,  # base_config.py (= trident.py default); half-size pixels
    sam_mask_coff=0.005,  # trident.py default (base_config.py sets none)
    sam_iou_thresh=0.80,  # base_config.py (trident.py kwargs default 0.9)
    prompt_batch=64,  # ours: prompts per mask-decoder call (memory only; released: per class)
    vocabulary=None,  # each dataset config names its class-name file
    name_sep='; ',  # get_cls_idx splits lines on '; '
    templates='openai_imagenet',  # prompts/imagenet_template.py openai_imagenet_template
    logit_scale=40.0,  # trident.py Trident default
    prob_thd=0.0,  # trident.py Trident default
    area_thd=None,
    slide_crop=336,  # base_config.py
    slide_stride=224,  # base_config.py
    refiner=None)  # trident.py pamr_steps=0
