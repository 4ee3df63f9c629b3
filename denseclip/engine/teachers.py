"""Frozen teachers for CLIP-DINOiser training: DINO through timm, and unsupervised saliency.

* :class:`DINOTeacher`: the last block's q, k, v of a DINO ViT (released: DINO ViT-B/16,
  ``models/FOUND/model.py get_vit_encoder`` hooks ``blocks[-1].attn.qkv``), position embedding
  resized the way DINO's ``interpolate_pos_encoding`` does (reference notes §16). Any plain
  timm ViT with one [CLS] token loads, a CLIP image tower too (the toy world's stand-in for
  DINO: ``vit_base_patch16_clip_224``, CLIP's mean/std).
* Saliency, the background head's target, selected by config. The released code uses FOUND's
  trained decoder (valeoai/FOUND, DINO ViT-S/8 + a 1x1 conv, weights not shipped here); we
  ship two training-free stand-ins computed from the same DINO teacher:

  - :class:`FOUNDSeedSaliency`: FOUND's own unsupervised background discovery, the pseudo-label
    its decoder is trained on (FOUND ``bkg_seg.py compute_img_bkg_seg``@f9f2ef7, Siméoni et
    al., "Unsupervised Object Localization: Observing the Background to Discover Objects", CVPR
    2023, https://arxiv.org/abs/2212.07834): the patch with least [CLS] attention seeds the
    background; patches whose key is similar to the seed's are background too.
  - :class:`DINOAttentionSaliency`: the [CLS] attention maps of DINO's last layer, each head
    kept down to a fraction of its attention mass (Caron et al., "Emerging Properties in
    Self-Supervised Vision Transformers", ICCV 2021, https://arxiv.org/abs/2104.14294, Fig. 3).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import Tensor, nn

from denseclip.clip.pos_embed import resample_pos_embed
from denseclip.registry import MODELS

__all__ = ['LastBlockQKV', 'load_timm_vit', 'vit_last_qkv', 'DINOTeacher',
           'found_seed_saliency', 'attention_mass_saliency', 'FOUNDSeedSaliency',
           'DINOAttentionSaliency']


@dataclass
class LastBlockQKV:
    """q, k, v of a ViT's last block, each (B, nh, 1+N, hd), [CLS] first; grid (h, w)."""

    q: Tensor
    k: Tensor
    v: Tensor
    grid: tuple[int, int]

    def cls_attention(self) -> Tensor:
        """(B, nh, N): the [CLS] query's softmax attention on the patches (all tokens are keys,
        as DINO's ``get_last_selfattention``)."""
        scale = self.q.shape[-1] ** -0.5
        attn = (self.q[:, :, :1] @ self.k.transpose(-2, -1) * scale).softmax(-1)  # (B,nh,1,T)
        return attn[:, :, 0, 1:]


def load_timm_vit(model: str, pretrained: str | os.PathLike | None,
                  model_kwargs: dict | None = None) -> nn.Module:
    """A DINO teacher's timm ViT in eval mode, loaded by
    :func:`~denseclip.models.backbones.proxy.build_timm_vit` (``'timm'``, a local file such as
    DINO's ``dino_vitbase16_pretrain.pth`` or a CLIP checkpoint, or None for random weights),
    which must be a plain ViT with one [CLS] token.
    """
    # Imported here: denseclip.models imports this module (through the trainer) on its own import.
    from denseclip.models.backbones.proxy import build_timm_vit

    vit = build_timm_vit(model, pretrained, model_kwargs, owner='DINO teacher',
                         key='model.dino.pretrained')
    if getattr(vit, 'num_prefix_tokens', None) != 1 or getattr(vit, 'no_embed_class', False):
        raise TypeError(f"DINO teacher: '{model}' is not a plain [CLS]-token ViT (register "
                        'tokens or no_embed_class are not supported)')
    return vit


def vit_last_qkv(vit: nn.Module, images: Tensor) -> LastBlockQKV:
    """Run a timm ViT up to its last block's qkv projection.

    Args:
        vit: a timm ``VisionTransformer`` with one [CLS] token.
        images: (B, 3, H, W) normalised as ``vit`` expects, H and W divisible by the patch
            size.

    Returns:
        :class:`LastBlockQKV` of the last block.
    """
    patch = vit.patch_embed.patch_size[0]
    if images.shape[-2] % patch or images.shape[-1] % patch:
        raise ValueError(f'DINO teacher: input {tuple(images.shape)} is not divisible by the '
                         f'patch size {patch}')
    x = vit.patch_embed.proj(images)  # (B, D, h, w)
    grid = tuple(x.shape[-2:])
    x = vit.patch_embed.norm(x.flatten(2).transpose(1, 2))  # (B, N, D)
    old = vit.patch_embed.grid_size
    # DINO's interpolate_pos_encoding: bicubic with scale_factor (h + 0.1) / h0.
    pos = resample_pos_embed(vit.pos_embed[0], grid, old_grid=old, mode='scale_factor')
    x = torch.cat([vit.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + pos  # (B, 1+N, D)
    x = vit.norm_pre(x)
    for block in vit.blocks[:-1]:
        x = block(x)
    attn = vit.blocks[-1].attn
    qkv = attn.qkv(vit.blocks[-1].norm1(x))  # (B, T, 3D)
    B, T, _ = qkv.shape
    qkv = qkv.reshape(B, T, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hd)
    return LastBlockQKV(q=attn.q_norm(qkv[0]), k=attn.k_norm(qkv[1]), v=qkv[2], grid=grid)


@MODELS.register_module()
class DINOTeacher(nn.Module):
    """Frozen DINO ViT returning its last block's q, k, v (see :func:`load_timm_vit`).

    Args:
        model, pretrained, model_kwargs: as in :func:`load_timm_vit`.
        mean: RGB mean on the 0-1 scale the teacher's inputs are normalised with (default
            ImageNet's, DINO's; a CLIP tower wants ``open_clip.OPENAI_DATASET_MEAN``).
        std: the matching standard deviation.
    """

    def __init__(self, model: str = 'vit_base_patch16_224.dino',
                 pretrained: str | os.PathLike | None = 'timm',
                 model_kwargs: dict | None = None,
                 mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
                 std: Sequence[float] = IMAGENET_DEFAULT_STD) -> None:
        from denseclip.models.backbones.proxy import _rgb  # see load_timm_vit

        super().__init__()
        self.mean = _rgb(mean, 'DINOTeacher', 'mean')
        self.std = _rgb(std, 'DINOTeacher', 'std')
        self.vit = load_timm_vit(model, pretrained, model_kwargs)
        self.vit.requires_grad_(False)
        self.patch_size = self.vit.patch_embed.patch_size[0]

    @torch.no_grad()
    def forward(self, images: Tensor) -> LastBlockQKV:
        """(B, 3, H, W) normalised with ``mean``/``std`` -> :class:`LastBlockQKV`."""
        return vit_last_qkv(self.vit, images)


def found_seed_saliency(out: LastBlockQKV, bkg_threshold: float = 0.3,
                        eps: float = 1e-10) -> Tensor:
    """FOUND's background discovery, inverted into a foreground mask.

    Heads are weighted by their attention sparsity (CroW-style ``beta``); the patch with the
    least weighted [CLS] attention is the background seed; patches whose weighted, normalised
    key has cosine > ``bkg_threshold`` with the seed's are background.

    Args:
        out: the DINO teacher's last block.
        bkg_threshold: FOUND's ``bkg_th`` (configs/found_DUTS-TR.yaml: 0.3).
        eps: FOUND's epsilon in the head weights.

    Returns:
        (B, 1, h, w) float mask, 1 on the foreground.
    """
    att = out.cls_attention()  # (B, nh, N)
    B, _, N = att.shape
    threshold = att.flatten(1).mean(1)  # (B,) per image
    sparsity = (att > threshold[:, None, None]).float().sum(-1) / N  # (B, nh) "Q"
    beta = torch.log((sparsity + eps).sum(1, keepdim=True) / (sparsity + eps))  # (B, nh)
    keys = out.k[:, :, 1:] * beta[:, :, None, None]  # (B, nh, N, hd)
    keys = F.normalize(keys.transpose(1, 2).reshape(B, N, -1), dim=-1)  # (B, N, nh*hd)
    seed = (att * beta[:, :, None]).sum(1).argmin(-1)  # (B,)
    seed_sim = (keys @ keys[torch.arange(B), seed][:, :, None])[..., 0]  # (B, N)
    background = seed_sim > bkg_threshold
    return (~background).float().reshape(B, 1, *out.grid)


def attention_mass_saliency(out: LastBlockQKV, mass: float = 0.6) -> Tensor:
    """Fraction of heads whose top-``mass`` share of [CLS] attention covers each patch.

    Args:
        out: the DINO teacher's last block.
        mass: attention mass each head keeps (DINO's visualisation: 0.6).

    Returns:
        (B, 1, h, w) in [0, 1]; > 0.5 where most heads attend.
    """
    att = out.cls_attention()  # (B, nh, N)
    att = att / att.sum(-1, keepdim=True)
    values, order = att.sort(-1, descending=True)
    # Keep the largest values until their running sum reaches `mass` (the one crossing it too).
    keep_sorted = (values.cumsum(-1) - values) < mass  # (B, nh, N)
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return keep.float().mean(1, keepdim=True).reshape(att.shape[0], 1, *out.grid)


@MODELS.register_module()
class FOUNDSeedSaliency(nn.Module):
    """:func:`found_seed_saliency` as a config-selectable module."""

    def __init__(self, bkg_threshold: float = 0.3) -> None:
        super().__init__()
        self.bkg_threshold = bkg_threshold

    def forward(self, out: LastBlockQKV) -> Tensor:
        return found_seed_saliency(out, self.bkg_threshold)


@MODELS.register_module()
class DINOAttentionSaliency(nn.Module):
    """:func:`attention_mass_saliency` as a config-selectable module."""

    def __init__(self, mass: float = 0.6) -> None:
        super().__init__()
        if not 0 < mass <= 1:
            raise ValueError(f'DINOAttentionSaliency: mass={mass}; expected 0 < mass <= 1')
        self.mass = mass

    def forward(self, out: LastBlockQKV) -> Tensor:
        return attention_mass_saliency(out, self.mass)
