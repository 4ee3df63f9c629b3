# CAT-Seg (L), ViT-L/14@336 (KU-CVLAB/CAT-Seg@6d3a188 configs/vitl_336.yaml): the B harness with
# the larger CLIP; the aggregator is the same (2 layers, hidden 128, pooling [2, 2]).
_base_ = ['./catseg_vit-b16.py']
model = dict(
    backbone=dict(
        model='ViT-L-14-336',
        pretrained='openai',  # CLIP_PRETRAINED "ViT-L/14@336px"
        input_size=336,  # clip_resolution (336, 336): 24x24 tokens (384 crops resized)
        out_indices=(7, 15)),  # layer_indexes [7, 15]
    decode_head=dict(
        embed_dim=768,  # TEXT_GUIDANCE_DIM / APPEARANCE_GUIDANCE_DIM 768
        guidance_channels=1024))  # proj_dim 1024
