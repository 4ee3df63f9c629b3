"""Training-free dense CLIP methods: one registered last-block attention per paper.

Each method's settings (its attention, position-embedding interpolation, segmentor settings)
live in its harness config, ``configs/_base_/models/<method>_harness.py``, which the benchmark
configs inherit and the Python API reads (:func:`denseclip.apis.known_methods`).
"""
from .base import DenseAttention, VanillaAttention, block_qkv, merge_heads
from .catseg import CATSegAttention
from .clearclip import ClearCLIPAttention, clearclip_attn
from .cliptrase import (CLIPtraseAttention, CLIPtraseRegionRefiner, cliptrase_attn,
                        cliptrase_correlation)
from .maskclip import KSPDRefiner, MaskCLIPAttention, kspd_refine
from .naclip import NACLIPAttention, naclip_attn, neighbourhood_prior
from .proxyclip import ProxyCLIPAttention, proxy_attention
from .resclip import (ResCLIPAttention, SemanticFeedbackRefiner, feedback_mask,
                      patch_labels, rcs_map, straight_paths)
from .scclip import SCCLIPAttention, lof_outliers, lof_scores
from .sclip import SCLIPAttention, sclip_attn

__all__ = [
    'DenseAttention', 'VanillaAttention', 'MaskCLIPAttention', 'SCLIPAttention',
    'ClearCLIPAttention', 'NACLIPAttention', 'block_qkv', 'merge_heads', 'sclip_attn',
    'clearclip_attn', 'naclip_attn', 'neighbourhood_prior', 'kspd_refine', 'KSPDRefiner',
    'CLIPtraseAttention', 'CLIPtraseRegionRefiner', 'cliptrase_attn', 'cliptrase_correlation',
    'ProxyCLIPAttention', 'proxy_attention', 'CATSegAttention', 'SCCLIPAttention',
    'lof_outliers', 'lof_scores', 'ResCLIPAttention', 'SemanticFeedbackRefiner', 'feedback_mask',
    'patch_labels', 'rcs_map', 'straight_paths'
]
