"""CLIP's ViT image tower as a dense feature extractor and an mmseg/mmdet backbone.

Data path (DESIGN.md §2)::

    images (B,3,H,W) -> conv1 -> [CLS] + patches + resampled pos-embed -> ln_pre
        -> blocks 0..L-2 (unchanged) -> dense last block (registered DenseAttention)
        -> ln_post -> proj -> (B, E, H/p, W/p) in the joint image-text space
"""
from __future__ import annotations

import os

import torch
from mmengine.model import BaseModule
from open_clip.model import CLIP
from open_clip.transformer import VisionTransformer
from torch import Tensor

from denseclip.clip import CLIPSource, load_clip, resample_pos_embed
from denseclip.clip.pos_embed import InterpMode
from denseclip.models.dense.base import DenseAttention, block_qkv, check_block, merge_heads
from denseclip.registry import MMDET_MODELS, MODELS

NUM_PREFIX_TOKENS = 1  # open_clip ViTs carry one [CLS] token


def load_clip_model(model: str | os.PathLike | CLIP | None,
                    pretrained: str | os.PathLike | None) -> tuple[CLIP, CLIPSource]:
    """:func:`denseclip.clip.load_clip`, or pass through an already-built open_clip CLIP."""
    if isinstance(model, CLIP):
        if pretrained is not None:
            raise ValueError('pass either a built CLIP model or pretrained=, not both')
        return model, CLIPSource(model=type(model).__name__, pretrained=None, checkpoint=None,
                                 quick_gelu=False)
    return load_clip(model, pretrained)


def check_images(images: Tensor, stride: int, owner: str) -> None:
    """Raise a ValueError naming the shape unless images is (B, 3, H, W), H, W % stride == 0."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f'{owner}: expected images (B, 3, H, W), got {tuple(images.shape)}')
    for axis, size in (('H', images.shape[2]), ('W', images.shape[3])):
        if size % stride:
            raise ValueError(f'{owner}: input {tuple(images.shape)} has {axis} not divisible by '
                             f'the output stride {stride}')


@MODELS.register_module()
@MMDET_MODELS.register_module()
class CLIPViT(BaseModule):
    """CLIP ViT whose last block is a configurable dense attention.

    Args:
        model: open_clip model name, model-config JSON path, None (inferred from
            ``pretrained``), or an already-built open_clip ``CLIP``.
        pretrained: open_clip tag, local weights file, or None (random weights).
        dense: config of the last-block :class:`DenseAttention` (default: vanilla).
        pos_interp: position-embedding interpolation, ``'size'`` or ``'scale_factor'``.
        out_indices: blocks whose patch tokens :meth:`forward` returns as (B, D, h, w) maps;
            the last block's are taken after the dense attention.
    """

    def __init__(self, model: str | os.PathLike | CLIP | None = 'ViT-B-16',
                 pretrained: str | os.PathLike | None = None, dense: dict | None = None,
                 pos_interp: InterpMode = 'size', out_indices: tuple[int, ...] = (-1,),
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        clip, self.source = load_clip_model(model, pretrained)
        if not isinstance(clip.visual, VisionTransformer):
            raise TypeError(f"CLIPViT: model={model!r} has a {type(clip.visual).__name__} image "
                            "tower; use type='CLIPResNet' for ResNet CLIPs")
        self.clip = clip
        self.visual = clip.visual
        self.blocks = self.visual.transformer.resblocks
        check_block(self.blocks[-1])
        self.dense: DenseAttention = MODELS.build(dense or dict(type='VanillaAttention'))
        if pos_interp not in ('size', 'scale_factor'):
            raise ValueError(f"CLIPViT: pos_interp={pos_interp!r}; expected 'size' or "
                             "'scale_factor'")
        self.pos_interp = pos_interp
        num_layers = len(self.blocks)
        self.out_indices = tuple(i % num_layers for i in out_indices)
        self.patch_size = self.visual.patch_size[0]
        self.embed_dim = self.visual.output_dim
        self.width = self.visual.conv1.out_channels

    @property
    def output_stride(self) -> int:
        return self.patch_size

    def embed(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Patch embedding, [CLS], position embedding and ln_pre.

        Returns:
            tokens (B, 1+N, D) and the patch grid (h, w).
        """
        check_images(images, self.patch_size, 'CLIPViT')
        visual = self.visual
        x = visual.conv1(images.to(visual.conv1.weight.dtype))  # (B, D, h, w)
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)  # (B, N, D)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)  # (B, 1, D)
        pos = resample_pos_embed(visual.positional_embedding, grid, old_grid=visual.grid_size,
                                 num_prefix_tokens=NUM_PREFIX_TOKENS, mode=self.pos_interp)
        x = torch.cat([cls, x], dim=1) + pos.to(x.dtype)  # (B, 1+N, D)
        return visual.ln_pre(x), grid

    def trunk(self, images: Tensor) -> tuple[list[Tensor], tuple[int, int]]:
        """Tokens after ln_pre and after each of blocks 0..L-2 (all (B, 1+N, D)), and the grid."""
        x, grid = self.embed(images)
        tokens = [x]
        for block in self.blocks[:-1]:
            x = block(x)
            tokens.append(x)
        return tokens, grid

    def project(self, tokens: Tensor, grid: tuple[int, int]) -> Tensor:
        """ln_post and proj of the patch tokens: (B, P+N, D) -> (B, E, h, w)."""
        feats = self.visual.ln_post(tokens[:, NUM_PREFIX_TOKENS:]) @ self.visual.proj  # (B, N, E)
        return feats.transpose(1, 2).reshape(feats.shape[0], -1, *grid)  # (B, E, h, w)

    def encode_dense(self, images: Tensor, return_keys: bool = False
                     ) -> Tensor | tuple[Tensor, Tensor]:
        """Dense joint-space features.

        Args:
            images: (B, 3, H, W) CLIP-normalised, H and W divisible by the patch size.
            return_keys: also return the last block's patch keys after ``out_proj``, as
                MaskCLIP's key smoothing uses them (MaskCLIP vit.py ``return_qkv``).

        Returns:
            (B, E, H/p, W/p) unnormalised patch embeddings in the image-text space, and with
            ``return_keys`` the (B, D, H/p, W/p) keys.
        """
        tokens, grid = self.trunk(images)
        feats = self.project(self.dense(self.blocks[-1], tokens[-1], grid), grid)
        if not return_keys:
            return feats
        keys = self.blocks[-1].attn.out_proj(merge_heads(block_qkv(self.blocks[-1],
                                                                   tokens[-1])[1]))
        keys = keys[:, NUM_PREFIX_TOKENS:].transpose(1, 2)  # (B, D, N)
        return feats, keys.reshape(keys.shape[0], -1, *grid)  # (B, D, h, w)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        """Multi-level maps for mmseg/mmdet: tokens of ``out_indices`` blocks, (B, D, h, w)."""
        tokens, grid = self.trunk(images)
        tokens = tokens[1:] + [self.dense(self.blocks[-1], tokens[-1], grid)]
        B = images.shape[0]
        return tuple(tokens[i][:, NUM_PREFIX_TOKENS:].transpose(1, 2).reshape(B, -1, *grid)
                     for i in self.out_indices)
