"""MaskCLIP: "Extract Free Dense Labels from CLIP", Zhou, Loy, Dai, ECCV 2022.

arXiv: https://arxiv.org/abs/2112.01071 — code: chongzhou96/MaskCLIP@245d31f.

Against plain CLIP, the last block's attention is replaced by the identity: each token keeps
its own value, ``x + o(v)``, then the FFN (the "v-path"). [CLS] is dropped by the segmentor.
The ResNet variant (attention pool's v/c projections) lives in ``CLIPResNet.encode_dense``.
MaskCLIP+'s "kspd" inference adds key smoothing and prompt denoising (:func:`kspd_refine`,
the segmentor's patch refiner :class:`KSPDRefiner`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from denseclip.models.refiner_protocols import PatchRefiner
from denseclip.registry import MODELS

from .base import DenseAttention, Grid

# MaskClipHead.refine_output multiplies the raw cosine by 100 before each softmax.
_KSPD_SCALE = 100.0


@MODELS.register_module()
class MaskCLIPAttention(DenseAttention):
    """Identity attention: z = x + o(v), then + MLP(LN2(z)) (MaskCLIP vit.py, return_qkv)."""

    def attend(self, q: Tensor, k: Tensor, v: Tensor, grid: Grid) -> Tensor:
        return v


def kspd_refine(logits: Tensor, keys: Tensor | None, *, ks_thresh: float = 1.0,
                pd_thresh: float = 0.5) -> Tensor:
    """MaskCLIP+ key smoothing (KS) and prompt denoising (PD) on patch-level cosine logits.

    As ``MaskClipHead.refine_output`` computes them (MaskCLIP@245d31f), which differs from the
    paper's text in two ways:

    * Deviation from the paper (kept, since it produced the numbers): the keys are L2-normalised
      over the *token* axis (``F.normalize(k, p=2)`` on (B, N, C) defaults to dim=1), not per
      token, and the key affinity W = k̂ k̂ᵀ is not row-normalised.
    * KS replaces the class scores of every patch whose max probability is < ``ks_thresh``
      (with the released 1.0, practically every patch) by W·P.

    Args:
        logits: (B, K, h, w) raw cosine similarities.
        keys: (B, C, h, w) last-block keys after ``out_proj`` (ViT) or ``k_proj`` (ResNet); None
            skips key smoothing.
        ks_thresh: KS threshold; 0 disables it.
        pd_thresh: PD threshold: a class whose max probability over the image is below it gets
            logit -100 everywhere; 0 disables it.

    Returns:
        (B, K, h, w): class probabilities if KS ran, else logits with denoised classes at -100.
    """
    B, K, h, w = logits.shape
    out = logits
    if pd_thresh > 0:
        conf = F.softmax(out * _KSPD_SCALE, dim=1).flatten(2).amax(-1)  # (B, K)
        out = out.masked_fill((conf < pd_thresh)[:, :, None, None], -100.0)
    if keys is not None and ks_thresh > 0:
        probs = F.softmax(out * _KSPD_SCALE, dim=1).flatten(2).transpose(1, 2)  # (B, N, K)
        k = F.normalize(keys.flatten(2).transpose(1, 2), p=2, dim=1)  # (B, N, C), over tokens
        smoothed = torch.bmm(k, k.transpose(1, 2)) @ probs  # (B, N, K)
        selected = probs.amax(-1, keepdim=True) < ks_thresh  # (B, N, 1)
        probs = torch.where(selected, smoothed, probs)
        out = probs.transpose(1, 2).reshape(B, K, h, w)  # (B, K, h, w)
    return out


@MODELS.register_module()
class KSPDRefiner(PatchRefiner):
    """:func:`kspd_refine` as a patch refiner of the segmentor (``patch_refiner=``): the keys
    are the backbone's ``patch_keys`` of the same forward pass.

    Args:
        ks_thresh: KS threshold (released: 1.0); 0 disables key smoothing.
        pd_thresh: PD threshold (released: 0.5); 0 disables prompt denoising.
    """

    def __init__(self, ks_thresh: float = 1.0, pd_thresh: float = 0.5) -> None:
        super().__init__()
        self.ks_thresh = ks_thresh
        self.pd_thresh = pd_thresh

    def forward(self, logits: Tensor, dense, backbone: nn.Module) -> Tensor:
        """(B, Q, h, w) patch cosine logits -> KSPD output of the same shape."""
        keys = backbone.patch_keys(dense).float() if self.ks_thresh > 0 else None
        return kspd_refine(logits, keys, ks_thresh=self.ks_thresh, pd_thresh=self.pd_thresh)

    def extra_repr(self) -> str:
        return f'ks_thresh={self.ks_thresh}, pd_thresh={self.pd_thresh}'
