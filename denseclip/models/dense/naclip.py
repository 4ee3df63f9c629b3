"""NACLIP: "Pay Attention to Your Neighbours: Training-Free Open-Vocabulary Semantic
Segmentation", Hajimiri, Ben Ayed, Dolz, WACV 2025.

arXiv: https://arxiv.org/abs/2404.08181 — code: sinahmr/NACLIP@0cac3a6.

Against plain CLIP, the last block uses k-k attention plus an additive Gaussian neighbourhood
prior Ω over the patch grid, and drops the residual and the FFN (``arch='reduced'``,
``attn_strategy='naclip'`` in clip/model.py).
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from denseclip.registry import MODELS

from .base import DenseAttention, Grid, scaled_scores


@lru_cache(maxsize=16)
def _omega(h: int, w: int, sigma: float, num_prefix_tokens: int) -> Tensor:
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    pos = torch.stack([rows.flatten(), cols.flatten()], dim=1).float()  # (N, 2)
    omega = torch.exp(-torch.cdist(pos, pos).square() / (2 * sigma ** 2))  # (N, N)
    # The [CLS] row and column are zero: no prior to or from the global token.
    return F.pad(omega, (num_prefix_tokens, 0, num_prefix_tokens, 0))  # (P+N, P+N)


def neighbourhood_prior(grid: Grid, sigma: float = 5.0, num_prefix_tokens: int = 1) -> Tensor:
    """Ω of Eq. (5): Ω_ij = exp(-‖p_i - p_j‖² / (2σ²)) over patch positions, peak 1.

    NACLIP builds it by convolving one-hot maps with a (2h-1)×(2w-1) Gaussian window
    (``get_attention_addition``), which covers every pair, so it equals this closed form.

    Returns:
        (P+N, P+N) float32, zero on the prefix rows and columns; cached per grid.
    """
    return _omega(int(grid[0]), int(grid[1]), float(sigma), int(num_prefix_tokens))


def naclip_attn(q: Tensor, k: Tensor, v: Tensor, omega: Tensor) -> Tensor:
    """softmax(s·k kᵀ + Ω)·v, (B, nh, T, hd) each, Ω (T, T) -> (B, nh, T, hd)."""
    return F.scaled_dot_product_attention(k, k, v, attn_mask=omega.to(k.dtype))


@MODELS.register_module()
class NACLIPAttention(DenseAttention):
    """k-k attention with the Gaussian prior; ``residual=False, ffn=False`` (``'reduced'``).

    Args:
        sigma: σ of the prior in patches (5 in the paper and the released code).
    """

    def __init__(self, *, sigma: float = 5.0, residual: bool = False, ffn: bool = False) -> None:
        super().__init__(residual=residual, ffn=ffn)
        self.sigma = sigma

    def attend(self, q: Tensor, k: Tensor, v: Tensor, grid: Grid) -> Tensor:
        omega = neighbourhood_prior(grid, self.sigma, k.shape[-2] - grid[0] * grid[1])
        return naclip_attn(q, k, v, omega.to(k.device))

    def score_terms(self, q: Tensor, k: Tensor, grid: Grid) -> list[tuple[Tensor, Tensor]]:
        omega = neighbourhood_prior(grid, self.sigma, k.shape[-2] - grid[0] * grid[1])
        return [(scaled_scores(k, k), omega.to(device=k.device, dtype=k.dtype))]
