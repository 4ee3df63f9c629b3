"""Training-free dense CLIP methods: one registered last-block attention per paper.

``METHODS`` maps the ``method=`` names of the Python API to each method's :class:`CLIPViT`
settings: its last-block attention and its reference's position-embedding interpolation
(DESIGN.md §4; reference notes §16).
"""
from .base import DenseAttention, VanillaAttention, block_qkv, merge_heads
from .catseg import CATSegAttention
from .clearclip import ClearCLIPAttention, clearclip_attn
from .cliptrase import (CLIPtraseAttention, CLIPtraseRegionRefiner, cliptrase_attn,
                        cliptrase_correlation)
from .maskclip import KSPDRefiner, MaskCLIPAttention, kspd_refine
from .naclip import NACLIPAttention, naclip_attn, neighbourhood_prior
from .proxyclip import ProxyCLIPAttention, proxy_attention
from .sclip import SCLIPAttention, sclip_attn

METHODS: dict[str, dict] = {
    'vanilla': dict(dense=dict(type='VanillaAttention'), pos_interp='size'),
    'maskclip': dict(dense=dict(type='MaskCLIPAttention'), pos_interp='size'),
    'sclip': dict(dense=dict(type='SCLIPAttention'), pos_interp='scale_factor'),
    'clearclip': dict(dense=dict(type='ClearCLIPAttention'), pos_interp='scale_factor'),
    'naclip': dict(dense=dict(type='NACLIPAttention'), pos_interp='scale_factor'),
    'cliptrase': dict(dense=dict(type='CLIPtraseAttention'), pos_interp='scale_factor'),
    # ProxyCLIP's open_clip fork resizes CLIP's pos-embed DINO's way too
    # (transformer.py@e7b767f interpolate_pos_encoding); its default proxy is DINO ViT-B/8.
    'proxyclip': dict(dense=dict(type='ProxyCLIPAttention', proxy=dict(
        type='DINOProxy', model='vit_base_patch8_224.dino', pretrained='timm')),
        pos_interp='scale_factor'),
}

__all__ = [
    'METHODS', 'DenseAttention', 'VanillaAttention', 'MaskCLIPAttention', 'SCLIPAttention',
    'ClearCLIPAttention', 'NACLIPAttention', 'block_qkv', 'merge_heads', 'sclip_attn',
    'clearclip_attn', 'naclip_attn', 'neighbourhood_prior', 'kspd_refine', 'KSPDRefiner',
    'CLIPtraseAttention', 'CLIPtraseRegionRefiner', 'cliptrase_attn', 'cliptrase_correlation',
    'ProxyCLIPAttention', 'proxy_attention', 'CATSegAttention'
]
