"""SCLIP: "SCLIP: Rethinking Self-Attention for Dense Vision-Language Inference", Wang, Mei,
Yuille, ECCV 2024.

arXiv: https://arxiv.org/abs/2312.01597 — code: wangf3014/SCLIP@b56bd30.

Against plain CLIP, the last block's q-k attention becomes correlative self-attention (CSA),
softmax(s·q qᵀ) + softmax(s·k kᵀ), rows summing to 2 with no renormalisation; residual and
FFN are kept and [CLS] takes part (clip/model.py ``custom_attn(csa=True)``).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from denseclip.registry import MODELS

from .base import DenseAttention, Grid, scaled_scores


def sclip_attn(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Correlative self-attention, (B, nh, T, hd) each -> (B, nh, T, hd).

    softmax(s·q qᵀ)·v + softmax(s·k kᵀ)·v = (softmax(s·q qᵀ) + softmax(s·k kᵀ))·v, so two fused
    SDPA calls compute it without materialising the maps.
    """
    return F.scaled_dot_product_attention(q, q, v) + F.scaled_dot_product_attention(k, k, v)


@MODELS.register_module()
class SCLIPAttention(DenseAttention):
    """CSA in the last block; residual and FFN kept (SCLIP's defaults)."""

    def attend(self, q: Tensor, k: Tensor, v: Tensor, grid: Grid) -> Tensor:
        return sclip_attn(q, k, v)

    def score_terms(self, q: Tensor, k: Tensor, grid: Grid) -> list[tuple[Tensor, None]]:
        return [(scaled_scores(q, q), None), (scaled_scores(k, k), None)]
