# MAFT+ with ConvNeXt-L (configs/semantic/train_semantic_large.yaml; trained_methods.md §5):
# the B harness with the large tower. train_semantic_large.yaml sets no cdt_params, so
# config.py's default [768, 8] applies, which is the L width.
_base_ = ['./maft_plus_convnext-b.py']
clip = dict(
    type='CLIPConvNeXt',
    model='convnext_large_d_320',  # FC_CLIP.CLIP_MODEL_NAME
    pretrained='laion2b_s29b_b131k_ft_soup')  # FC_CLIP.CLIP_PRETRAINED_WEIGHTS
model = dict(
    backbone=clip,
    decode_head=dict(
        teacher=clip,
        embed_dim=768,  # FC_CLIP.EMBED_DIM
        in_channels=[192, 384, 768, 1536]))  # res2..res5 of convnext_large_d
