"""ProxyCLIP: "ProxyCLIP: Proxy Attention Improves CLIP for Open-Vocabulary Segmentation",
Lan, Yang, Li, Zeng, Loy, ECCV 2024.

arXiv: https://arxiv.org/abs/2408.04883 — code: mc-lan/ProxyCLIP@e7b767f.

Against plain CLIP, the last block's attention map comes from a second encoder (the proxy:
DINO, DINOv2 or SAM): a thresholded, sharpened softmax of the proxy's patch-feature cosines,
shared by all heads, applied to CLIP's last-block values resized to the proxy grid. There is no
residual, no FFN, no CLIP q/k and no [CLS]; features come out at the proxy's grid
(open_clip/transformer.py ``VisionTransformer.custom_attn``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# (importing proxy also registers DINOProxy and SAMProxy, which proxy=dict(type=...) names)
from denseclip.models.backbones.proxy import from_clip_normalisation
from denseclip.registry import MODELS

from .base import DenseAttention, Grid, merge_heads, num_prefix


def proxy_attention(feats: Tensor, v: Tensor, beta: float | Tensor = 1.2,
                    gamma: float = 3.0) -> Tensor:
    """Proxy attention A·v with A shared by all heads.

    F̂ = L2-normalised proxy features, S = F̂F̂ᵀ, S' = γ(S − β·mean(S)); entries with S' < 0
    become −∞ (S' = 0 is kept), A = softmax(S') over each row. Deviation: mean(S) per image;
    the released code takes the mean of the whole (B, N', N') tensor, the same for B = 1.
    Deviation: the diagonal is never masked. Since S_ij <= S_ii = 1, the diagonal is masked
    only when the whole row is (mean(S) > 1/β: proxy features nearly all alike), where the
    released code's softmax gives NaN; there each token keeps its own value. Every other row
    is unchanged.

    Args:
        feats: (B, N', C) proxy patch features.
        v: (B, nh, N', hd) values on the proxy grid.
        beta: threshold factor β (1.2 for every dataset), or (B, 1, 1) per image.
        gamma: sharpness γ (3.0 for every dataset).

    Returns:
        (B, nh, N', hd).
    """
    f = F.normalize(feats, dim=-1)
    s = f @ f.transpose(1, 2)  # (B, N', N')
    s = gamma * (s - beta * s.mean(dim=(1, 2), keepdim=True))
    masked = (s < 0) & ~torch.eye(s.shape[-1], dtype=torch.bool, device=s.device)
    attn = s.masked_fill(masked, float('-inf')).softmax(-1)  # (B, N', N')
    return attn[:, None].to(v.dtype) @ v  # (B, nh, N', hd)


@MODELS.register_module()
class ProxyCLIPAttention(DenseAttention):
    """The last block as proxy attention; returns patch tokens at the proxy's grid.

    The input image is un-normalised from CLIP's mean/std and re-normalised with the proxy's
    (``proxy.mean``/``proxy.std``), as ``forward_feature`` does per crop.

    Args:
        proxy: config (or built module) of a proxy encoder (``DINOProxy``, ``SAMProxy``)
            mapping (B, 3, H, W) to (B, C, I, J).
        beta: β, the mask threshold (1.2 in every released config).
        gamma: γ, the sharpness (3.0 in every released config).
    """

    def __init__(self, *, proxy: dict | nn.Module, beta: float = 1.2,
                 gamma: float = 3.0) -> None:
        super().__init__(residual=False, ffn=False)
        self.proxy = MODELS.build(proxy) if isinstance(proxy, dict) else proxy
        self.beta = beta
        self.gamma = gamma

    def proxy_images(self, images: Tensor) -> Tensor:
        """CLIP-normalised (B, 3, H, W) -> the same pixels in the proxy's normalisation."""
        return from_clip_normalisation(images, self.proxy.mean, self.proxy.std)

    def dense_forward(self, blocks: nn.ModuleList, tokens: list[Tensor], grid: Grid,
                      images: Tensor) -> tuple[Tensor, Grid, None]:
        feats = self.proxy(self.proxy_images(images))  # (B, C, I, J)
        B, _, I, J = feats.shape
        block = blocks[-1]
        attn = block.attn
        D = tokens[-1].shape[-1]
        # Only CLIP's v is used: in_proj's last D rows on LN1 of the patch tokens.
        x = block.ln_1(tokens[-1][:, num_prefix(tokens[-1], grid):])  # (B, N, D)
        v = F.linear(x, attn.in_proj_weight[2 * D:], attn.in_proj_bias[2 * D:])  # (B, N, D)
        nh = attn.num_heads
        # Deviation (as intended, not as released): the released code reshapes v to
        # (W/p, H/p) and takes the proxy grid as (H/p', H/p'), which scrambles non-square
        # inputs; rows here are H and columns W throughout.
        v = v.transpose(1, 2).reshape(B * nh, D // nh, *grid)  # (B*nh, hd, h, w)
        v = F.interpolate(v, size=(I, J), mode='bilinear', align_corners=False)
        v = v.reshape(B, nh, D // nh, I * J).transpose(2, 3)  # (B, nh, IJ, hd)
        f = feats.flatten(2).transpose(1, 2)  # (B, IJ, C)
        out = proxy_attention(f, v, self.window_beta(f), self.gamma)  # (B, nh, IJ, hd)
        return block.ls_1(attn.out_proj(merge_heads(out))), (I, J), None  # no [CLS] computed

    def window_beta(self, feats: Tensor) -> float | Tensor:
        """β of each window's threshold β·mean(S), given the (B, N', C) proxy features: β
        (Trident rescales it so that the mean spans all windows of an image)."""
        return self.beta

    def extra_repr(self) -> str:
        return f'beta={self.beta}, gamma={self.gamma}'
