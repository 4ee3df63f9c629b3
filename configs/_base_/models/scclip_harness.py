# The SC-CLIP harness (SuleBai/SC-CLIP@0417ba9 scclip_segmentor.py defaults with
# configs/base_config.py; reference notes §12): OpenAI ViT-B/16 (clip.load, QuickGELU), the
# self-calibrated last block (SCCLIPAttention: LOF anomalies in block 11 filled from their
# neighbours, block-8 similarities pooling and prior, block-3 similarities pooling, blocks 3-9
# fused, 0.3·[CLS]), SCLIP's +0.1 position interpolation (clip/model.py
# interpolate_pos_encoding), 80 ImageNet templates, 224/112 windows, logit scale 40, no PAMR.
# Deviation: the reference runs CLIP in fp16 on CUDA; we run fp32 (argmax agrees, notes §14.5).
# S, the short side of the Python API and the demos (method='scclip'): the configs' 336.
# Each benchmark config states its dataset's S in its test_pipeline.
short_side = 336
model = dict(
    type='OpenVocabSegmentor',
    backbone=dict(
        type='CLIPViT',
        model='ViT-B-16',
        pretrained='openai',  # clip.load('ViT-B/16')
        # base_config.py: pre_adjust_idx=8, post_adjust_idx=3, multi 3..10, res_cls=0.3;
        # model.py: beta=0.4, lof_pytorch(n_neighbors=30, contamination=0.05)
        dense=dict(type='SCCLIPAttention', beta=0.4, pre_adjust_idx=8, post_adjust_idx=3,
                   multi_start_idx=3, multi_end_idx=10, res_cls=0.3, lof_neighbors=30,
                   contamination=0.05),
        pos_interp='scale_factor'),  # interpolate_pos_encoding (+0.1)
    vocabulary=None,  # each dataset config names its class-name file (SCLIP's, byte-identical)
    name_sep=', ',  # get_cls_idx splits lines on ', '
    templates='openai_imagenet',
    logit_scale=40.0,  # SCCLIPForSegmentation default
    prob_thd=0.0,
    area_thd=None,
    slide_crop=224,
    slide_stride=112,
    pad_to_patch=False,
    refiner=None)  # pamr_steps=0
