"""ClearCLIP: "ClearCLIP: Decomposing CLIP Representations for Dense Vision-Language
Inference", Lan, Yang, Li, Zeng, Loy, ECCV 2024.

arXiv: https://arxiv.org/abs/2407.12442 — code: mc-lan/ClearCLIP@ad68a40.

Against plain CLIP, the last block keeps only its attention branch: q-q attention, no residual,
no FFN; LN_post and proj are applied to the attention output alone
(open_clip/transformer.py ``forward(model_type='ClearCLIP', ignore_residual=True)``).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from denseclip.registry import MODELS

from .base import DenseAttention, Grid, scaled_scores


def clearclip_attn(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Self-self q-q attention softmax(s·q qᵀ)·v, (B, nh, T, hd) each -> (B, nh, T, hd)."""
    return F.scaled_dot_product_attention(q, q, v)


@MODELS.register_module()
class ClearCLIPAttention(DenseAttention):
    """q-q attention; ``residual=False, ffn=False`` by default, as the paper (Sec. 3.3).

    Note the released ``configs/base_config.py`` sets ``model_type='vanilla'``; that is
    "attention-only vanilla", not ClearCLIP (reference notes §5, ClearCLIP issues #3, #12).
    """

    def __init__(self, *, residual: bool = False, ffn: bool = False) -> None:
        super().__init__(residual=residual, ffn=ffn)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, grid: Grid) -> Tensor:
        return clearclip_attn(q, k, v)

    def score_terms(self, q: Tensor, k: Tensor, grid: Grid) -> list[tuple[Tensor, None]]:
        return [(scaled_scores(q, q), None)]
