"""CLIP's ViT image tower as a dense feature extractor and an mmseg/mmdet backbone.

Data path (DESIGN.md §2)::

    images (B,3,H,W) -> conv1 -> [CLS] + patches + resampled pos-embed -> ln_pre
        -> blocks 0..L-2 (unchanged) -> dense last block (registered DenseAttention)
        -> ln_post -> proj -> (B, E, H/p, W/p) in the joint image-text space
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.registry import DefaultScope
from open_clip.model import CLIP
from torch import Tensor, nn

from denseclip.clip import CLIPSource, load_clip
from denseclip.clip.pos_embed import InterpMode
from denseclip.models.backbones.towers import vit_tower
from denseclip.models.dense.base import (DenseAttention, block_qkv, check_block, check_support,
                                         merge_heads)
from denseclip.registry import MMDET_MODELS, MODELS


@dataclass
class DenseOutput:
    """What a dense forward pass produced, for refiners that need more than the features.

    Attributes:
        feats: (B, E, h', w') joint-space features.
        grid: the CLIP patch grid (h, w) of the input.
        tokens: ViT: the trunk's tokens [after ln_pre, after block 0, ..., after block L-2],
            each (B, 1+N, D); ResNet: [layer4 output (B, C, h, w)].
        images: the (B, 3, H, W) input.
        levels: multi-level maps for decode heads, (B, C_i, H/s_i, W/s_i) each (DenseCLIP's
            x1..x4 or fpn1..fpn4; CLIPViT's maps after its earlier ``out_indices`` blocks, e.g.
            CAT-Seg's guidance); empty by default.
        global_feats: (B, E) image embedding in the joint space (DenseCLIP's g), or None.
        cls_feats: (B, E) the [CLS] token leaving the dense last block, in the joint space
            (ln_post, proj), for refiners that score it (CLIPtrase's [CLS] product); None
            where the method computes none.
    """

    feats: Tensor
    grid: tuple[int, int]
    tokens: list[Tensor]
    images: Tensor
    levels: tuple[Tensor, ...] = ()
    global_feats: Tensor | None = None
    cls_feats: Tensor | None = None


def load_clip_model(model: str | os.PathLike | CLIP | None,
                    pretrained: str | os.PathLike | None) -> tuple[CLIP, CLIPSource]:
    """:func:`denseclip.clip.load_clip`, or pass through an already-built open_clip CLIP."""
    if isinstance(model, CLIP):
        if pretrained is not None:
            raise ValueError('pass either a built CLIP model or pretrained=, not both')
        return model, CLIPSource(model=type(model).__name__, pretrained=None, checkpoint=None,
                                 quick_gelu=False)
    return load_clip(model, pretrained)


def keep_loaded_clip(backbone: nn.Module, clip: nn.Module) -> None:
    """Keep the loaded open_clip model as ``backbone.clip`` without registering it.

    A backbone's parameters are its image tower's alone (``backbone.visual``), each under one
    name; the text tower goes to the segmentor's :class:`OpenCLIPTextEncoder`, built from
    ``backbone.clip`` so that one ``pretrained`` names both towers.
    """
    object.__setattr__(backbone, 'clip', clip)


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
        pos_interp: position-embedding interpolation, ``'size'``, ``'scale_factor'`` or
            ``'bilinear'`` (see :func:`~denseclip.clip.resample_pos_embed`).
        out_indices: blocks whose patch tokens :meth:`forward` returns as (B, D, h, w) maps;
            the last block's are taken after the dense attention. :meth:`forward_dense` puts
            the maps of the earlier ones in ``DenseOutput.levels`` (CAT-Seg's guidance).
        input_size: resize every input to this (h, w) (bilinear) before the tower, e.g.
            CAT-Seg's 384 x 384 (ViT-B/16) or 336 x 336 (ViT-L/14@336); None: as given.
    """

    def __init__(self, model: str | os.PathLike | CLIP | None = 'ViT-B-16',
                 pretrained: str | os.PathLike | None = None, dense: dict | None = None,
                 pos_interp: InterpMode = 'size', out_indices: tuple[int, ...] = (-1,),
                 input_size: int | tuple[int, int] | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        clip, self.source = load_clip_model(model, pretrained)
        keep_loaded_clip(self, clip)
        self.visual = clip.visual
        self.tower = vit_tower(self.visual)  # the backbone contract of this family
        dense = dense or dict(type='VanillaAttention')
        # mmseg's registry holds the dense attentions; an mmdet detector builds this backbone
        # under mmdet's default scope, where they would not be found
        with DefaultScope.overwrite_default_scope('mmseg'):
            check_support(MODELS.get(dense['type']) if isinstance(dense, dict) else dense,
                          self.tower.family)  # before building: its own arguments come second
            self.dense: DenseAttention = MODELS.build(dense)
        check_block(self.blocks[-1])
        if pos_interp not in ('size', 'scale_factor', 'bilinear'):
            raise ValueError(f"CLIPViT: pos_interp={pos_interp!r}; expected 'size', "
                             "'scale_factor' or 'bilinear'")
        self.pos_interp = pos_interp
        num_layers = len(self.blocks)
        self.out_indices = tuple(i % num_layers for i in out_indices)
        if isinstance(input_size, int):
            input_size = (input_size, input_size)
        self.input_size = None if input_size is None else tuple(input_size)
        self.patch_size = self.tower.patch_size
        self.embed_dim = self.tower.embed_dim
        self.width = self.tower.width

    @property
    def family(self) -> str:
        """The tower family (``'openclip'``, ``'eva'``, ``'siglip'``)."""
        return self.tower.family

    @property
    def num_prefix_tokens(self) -> int:
        """P, the tokens before the patches: 1 ([CLS]), 0 (SigLIP), 1 + registers."""
        return self.tower.num_prefix_tokens

    @property
    def output_stride(self) -> int:
        """Input sizes must be multiples of it: the patch size, or 1 with ``input_size``."""
        return 1 if self.input_size is not None else self.patch_size

    @property
    def blocks(self) -> nn.ModuleList | list:
        """The image tower's residual blocks, with open_clip's block interface."""
        return self.tower.blocks

    def embed(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Patch embedding, [CLS], position embedding and ln_pre.

        Returns:
            tokens (B, 1+N, D) and the patch grid (h, w).
        """
        if self.input_size is not None and tuple(images.shape[-2:]) != self.input_size:
            images = F.interpolate(images, size=self.input_size, mode='bilinear',
                                   align_corners=False)
        check_images(images, self.patch_size, 'CLIPViT')
        return self.tower.embed(images, self.pos_interp)

    def trunk(self, images: Tensor) -> tuple[list[Tensor], tuple[int, int]]:
        """Tokens after ln_pre and after each of blocks 0..L-2 (all (B, 1+N, D)), and the grid."""
        x, grid = self.embed(images)
        tokens = [x]
        for block in self.blocks[:-1]:
            x = self.tower.run_block(block, x, grid)
            tokens.append(x)
        return tokens, grid

    def project(self, patches: Tensor, grid: tuple[int, int]) -> Tensor:
        """ln_post and proj of patch tokens: (B, N, D) -> (B, E, h, w).

        A (K, B, N, D) stack is K branches a dense attention fuses after ln_post (CorrCLIP):
        each goes through ln_post, they are summed with its ``branch_weights``, then projected.
        """
        if patches.ndim == 4:
            weights = getattr(self.dense, 'branch_weights', None)
            if weights is None or len(weights) != patches.shape[0]:
                raise ValueError(f'CLIPViT: {type(self.dense).__name__} returned '
                                 f'{patches.shape[0]} branches but branch_weights={weights}')
            if self.family != 'openclip':
                raise TypeError(f'CLIPViT: {type(self.dense).__name__} fuses branches after '
                                f"ln_post, which only the 'openclip' family has (this tower: "
                                f'{self.family!r})')
            post = sum(w * self.visual.ln_post(p) for w, p in zip(weights, patches))
            feats = post @ self.visual.proj  # (B, N, E)
            return feats.transpose(1, 2).reshape(feats.shape[0], -1, *grid)
        feats = self.tower.post(patches)  # (B, N, E)
        return feats.transpose(1, 2).reshape(feats.shape[0], -1, *grid)  # (B, E, h, w)

    def patch_map(self, tokens: Tensor, grid: tuple[int, int]) -> Tensor:
        """(B, 1+N, D) tokens -> (B, D, h, w) map of their patch tokens."""
        patches = tokens[:, self.num_prefix_tokens:].transpose(1, 2)  # (B, D, N)
        return patches.reshape(tokens.shape[0], -1, *grid)

    def forward_dense(self, images: Tensor) -> DenseOutput:
        """Dense features with what refiners and heads need: the trunk's tokens, the maps
        after the ``out_indices`` blocks before the last (``levels``) and the input."""
        tokens, grid = self.trunk(images)
        patches, out_grid, cls = self.dense.dense_forward(self.blocks, tokens, grid, images)
        levels = tuple(self.patch_map(tokens[i + 1], grid) for i in self.out_indices
                       if i < len(self.blocks) - 1)
        cls_feats = None if cls is None else self.tower.post(cls)
        return DenseOutput(feats=self.project(patches, out_grid), grid=grid, tokens=tokens,
                           images=images, levels=levels, cls_feats=cls_feats)

    def encode_dense(self, images: Tensor) -> Tensor:
        """Dense joint-space features.

        Args:
            images: (B, 3, H, W) CLIP-normalised, H and W divisible by the patch size.

        Returns:
            (B, E, h', w') unnormalised patch embeddings in the image-text space; (h', w') is
            (H/p, W/p) except for methods that output at a proxy's grid (ProxyCLIP).
        """
        return self.forward_dense(images).feats

    def patch_keys(self, dense: DenseOutput) -> Tensor:
        """The last block's patch keys after ``out_proj`` (B, D, h, w), as MaskCLIP's key
        smoothing reads them (MaskCLIP vit.py ``return_qkv``)."""
        block = self.blocks[-1]
        keys = block.attn.out_proj(merge_heads(block_qkv(block, dense.tokens[-1],
                                                         dense.grid)[1]))
        keys = keys[:, self.num_prefix_tokens:].transpose(1, 2)  # (B, D, N)
        return keys.reshape(keys.shape[0], -1, *dense.grid)  # (B, D, h, w)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        """Multi-level maps for mmseg/mmdet: tokens of ``out_indices`` blocks, (B, D, h, w)."""
        tokens, grid = self.trunk(images)
        maps = [self.patch_map(t, grid) for t in tokens[1:]]  # after blocks 0..L-2
        if self.out_indices[-1] == len(self.blocks) - 1:
            patches, out_grid, _ = self.dense.dense_forward(self.blocks, tokens, grid, images)
            if patches.ndim == 4:
                raise TypeError(f'CLIPViT.forward: {type(self.dense).__name__} fuses branches '
                                'after ln_post, so it has no single pre-ln_post map; use '
                                'forward_dense / encode_dense')
            maps.append(patches.transpose(1, 2).reshape(images.shape[0], -1, *out_grid))
        return tuple(maps[i] for i in self.out_indices)
