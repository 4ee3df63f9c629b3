# The ResCLIP harness (yvhangyang/ResCLIP@0e085f7 resclip_segmentor.py defaults with
# configs/base_config.py and `bash test_all.sh wo_resi resclip 5`; reference notes §12): OpenAI
# ViT-B/16 (clip.load, QuickGELU), NACLIP's last block (k-k attention with the Gaussian prior,
# σ = 5, no residual or FFN: arch='wo_resi', attn_strategy='resclip') with RCS (the mean of
# blocks 5-8's own attention maps) mixed in after the softmax and SFR (a feedback mask from the
# window's first-pass prediction) before it, SCLIP's +0.1 position interpolation (clip/model.py
# interpolate_pos_encoding), 80 ImageNet templates, 224/112 windows, logit scale 40, no PAMR on
# the merged scores (pamr_steps=0; the first pass has its own, clip/model.py create_logit_temp).
# The RCS/SFR weights and AdaThr's temp_thd are set per dataset by every released config; the
# defaults here (for the Python API and the demos, method='resclip') are cfg_ade20k.py's.
# Deviations: the reference runs CLIP in fp16 on CUDA, and casts the feedback mask to fp16
# (clip/model.py custom_attn); we run fp32 (argmax agrees, notes §14.5) and keep its dtype.
# The λ_rcs = 0.5 is no released config's: they set 0.2-0.6 per dataset.
# S, the short side of the Python API and the demos: the configs' 336.
# Each benchmark config states its dataset's S in its test_pipeline.
short_side = 336
logit_scale = 40.0  # ResCLIPSegmentation logit_scale: the segmentor's and the first pass's
model = dict(
    type='OpenVocabSegmentor',
    backbone=dict(
        type='CLIPViT',
        model='ViT-B-16',
        pretrained='openai',  # clip.load('ViT-B/16')
        dense=dict(
            type='ResCLIPAttention',
            attention=dict(type='NACLIPAttention', sigma=5.0),  # 'resclip', gaussian_std=5
            rcs_blocks=(5, 9),  # forward: attn_map[i] for i in range(5, 9)
            rcs_weights=(2.0, 0.3),  # cfg_ade20k.py attn_rcs_weights
            sfr_weights=(2.1, 0.7)),  # cfg_ade20k.py attn_sfr_weights
        pos_interp='scale_factor'),  # interpolate_pos_encoding (+0.1)
    patch_refiner=dict(
        type='SemanticFeedbackRefiner',
        temp_thd=0.25,  # cfg_ade20k.py temp_thd (AdaThr)
        delete_same_entity=True,  # every cfg_*.py
        gaussian_std=5.0,  # the same gaussian_std as NACLIP's prior (set_params)
        logit_scale=logit_scale,
        pamr_steps=10,  # create_logit_temp: PAMR(10, dilations=(8, 16))
        pamr_dilations=(8, 16)),
    vocabulary=None,  # each dataset config names its class-name file (SCLIP's, byte-identical)
    name_sep=', ',  # get_cls_idx splits lines on ', '
    templates='openai_imagenet',
    logit_scale=logit_scale,
    prob_thd=0.0,
    area_thd=None,
    renormalize=True,  # postprocess_result: seg_probs /= their sum, after the labels
    slide_crop=224,
    slide_stride=112,
    pad_to_patch=False,
    refiner=None)  # pamr_steps=0
