# The zero-shot detector with a CLIP ViT (OpenAI ViT-B/16): the dense joint-space map of a
# training-free dense method (NACLIP here; any `dense=` of CLIPViT works, e.g.
# SCLIPAttention, ClearCLIPAttention, MaskCLIPAttention) pooled in each proposal with RoIAlign
# (7x7, averaged), then RegionCLIP's classifier and scoring (regionclip_rn50-c4.py). Not in
# RegionCLIP: the ViT variant is ours, so every training-free method becomes a detector.
_base_ = ['./regionclip_rn50-c4.py']
model = dict(
    backbone=dict(_delete_=True,  # a ViT replaces the ResNet's arguments
                  type='CLIPViT', model='ViT-B-16', pretrained='openai',
                  dense=dict(type='NACLIPAttention', sigma=5.0)),
    roi_size=7)
