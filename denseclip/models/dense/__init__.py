"""Training-free dense CLIP methods: one registered last-block attention per paper.

``METHODS`` maps the ``method=`` names of the Python API to each method's :class:`CLIPViT`
settings: its last-block attention and its reference's position-embedding interpolation
(DESIGN.md §4; reference notes §16).
"""
from .base import DenseAttention, VanillaAttention, block_qkv, merge_heads
from .clearclip import ClearCLIPAttention, clearclip_attn
from .maskclip import MaskCLIPAttention, kspd_refine
from .naclip import NACLIPAttention, naclip_attn, neighbourhood_prior
from .sclip import SCLIPAttention, sclip_attn

METHODS: dict[str, dict] = {
    'vanilla': dict(dense=dict(type='VanillaAttention'), pos_interp='size'),
    'maskclip': dict(dense=dict(type='MaskCLIPAttention'), pos_interp='size'),
    'sclip': dict(dense=dict(type='SCLIPAttention'), pos_interp='scale_factor'),
    'clearclip': dict(dense=dict(type='ClearCLIPAttention'), pos_interp='scale_factor'),
    'naclip': dict(dense=dict(type='NACLIPAttention'), pos_interp='scale_factor'),
}

__all__ = [
    'METHODS', 'DenseAttention', 'VanillaAttention', 'MaskCLIPAttention', 'SCLIPAttention',
    'ClearCLIPAttention', 'NACLIPAttention', 'block_qkv', 'merge_heads', 'sclip_attn',
    'clearclip_attn', 'naclip_attn', 'neighbourhood_prior', 'kspd_refine'
]
