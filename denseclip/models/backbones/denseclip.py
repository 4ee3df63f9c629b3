"""DenseCLIP's image backbones: CLIP towers that give multi-level maps and joint-space features.

Rao et al., "DenseCLIP: Language-Guided Dense Prediction with Context-Aware Prompting", CVPR
2022, https://arxiv.org/abs/2112.01518; raoyongming/DenseCLIP@5eda47f
segmentation/denseclip/models.py. Against the training-free backbones:

* :class:`CLIPResNetWithAttention` runs the **full** attention pool: every location is a query
  over [mean; all locations], giving the global g (token 0) and the dense z; MaskCLIP keeps only
  the value path. Its positional embedding is resized bilinearly at load time (to
  ``input_resolution / 32``) and again to the input's grid in every forward; the detection
  release crops its top-left corner instead (``pos_embed='crop'``).
* :class:`CLIPVisionTransformer` taps four blocks into fpn1..fpn4 (strides 4-32) and applies
  ``ln_post`` and ``proj`` to all tokens after the unchanged last block (g = [CLS], z = patches).

Both return a :class:`DenseOutput` with ``levels`` and ``global_feats`` for decode heads, and
their ``forward`` gives the levels alone (the ``fpn_clip`` baselines in mmseg's EncoderDecoder).
"""
from __future__ import annotations

import math
import os
from typing import Literal

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from open_clip.modified_resnet import AttentionPool2d
from timm.layers import drop_path
from torch import Tensor, nn

from denseclip.clip import resample_pos_embed
from denseclip.models.backbones.clip_resnet import CLIPResNet
from denseclip.models.backbones.clip_vit import CLIPViT, DenseOutput, check_images
from denseclip.registry import MMDET_MODELS, MODELS


def square_grid(pos_embed: Tensor) -> tuple[int, int]:
    """The (n, n) grid of a (1 + n*n, C) positional embedding."""
    n = math.isqrt(pos_embed.shape[0] - 1)
    if n * n + 1 != pos_embed.shape[0]:
        raise ValueError(f'positional embedding of {pos_embed.shape[0]} rows is not 1 + n*n')
    return n, n


def resize_pos_param(pos_embed: nn.Parameter, grid: tuple[int, int]) -> nn.Parameter:
    """The load-time resize: a new parameter, bilinear to ``grid`` ([CLS] row kept)."""
    with torch.no_grad():
        resized = resample_pos_embed(pos_embed.detach(), grid, old_grid=square_grid(pos_embed),
                                     mode='bilinear')
    return nn.Parameter(resized.clone(), requires_grad=pos_embed.requires_grad)


def crop_pos_embed(pos_embed: Tensor, grid: tuple[int, int]) -> Tensor:
    """The [mean] row and the top-left ``grid`` of an (n, n) positional table, (1 + h*w, C).

    DenseCLIP's detection ``AttentionPool2d`` (detection/denseclip/models.py@5eda47f) crops
    instead of resizing: its 1344 / 32 = 42 grid covers every padded COCO input (1333 x 800).
    """
    n, _ = square_grid(pos_embed)
    h, w = grid
    if h > n or w > n:
        raise ValueError(f'crop_pos_embed: the input grid {grid} exceeds the {n}x{n} positional '
                         f'table; raise input_resolution to at least {32 * max(h, w)} pixels')
    spatial = pos_embed[1:].reshape(n, n, -1)[:h, :w].reshape(h * w, -1)  # (hw, C)
    return torch.cat([pos_embed[:1], spatial])  # (1+hw, C)


def attention_pool(pool: AttentionPool2d, x: Tensor,
                   pos_embed: Literal['resize', 'crop'] = 'resize') -> tuple[Tensor, Tensor]:
    """CLIP's attention pool with every location as a query (DenseCLIP ``AttentionPool2d``).

    Args:
        pool: an open_clip ``AttentionPool2d`` (q/k/v/c_proj, positional embedding, heads).
        x: (B, C, h, w) layer4 features.
        pos_embed: fit the positional table to (h, w) by bilinear resizing (segmentation) or
            by cropping its top-left corner (detection, :func:`crop_pos_embed`).

    Returns:
        g (B, E), the [mean] token's output (open_clip's pooled embedding), and z (B, E, h, w).
    """
    B, C, h, w = x.shape
    tokens = x.flatten(2).permute(2, 0, 1)  # (hw, B, C)
    tokens = torch.cat([tokens.mean(dim=0, keepdim=True), tokens])  # (1+hw, B, C)
    if pos_embed == 'crop':
        pos = crop_pos_embed(pool.positional_embedding, (h, w))
    else:
        pos = resample_pos_embed(pool.positional_embedding, (h, w),
                                 old_grid=square_grid(pool.positional_embedding),
                                 mode='bilinear')
    tokens = tokens + pos[:, None].to(tokens.dtype)  # (1+hw, B, C)
    out, _ = F.multi_head_attention_forward(
        query=tokens, key=tokens, value=tokens, embed_dim_to_check=C,
        num_heads=pool.num_heads, q_proj_weight=pool.q_proj.weight,
        k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight,
        in_proj_weight=None,
        in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
        out_proj_weight=pool.c_proj.weight, out_proj_bias=pool.c_proj.bias,
        use_separate_proj_weight=True, training=False, need_weights=False)  # (1+hw, B, E)
    out = out.permute(1, 2, 0)  # (B, E, 1+hw)
    return out[:, :, 0], out[:, :, 1:].reshape(B, -1, h, w)


@MODELS.register_module()
@MMDET_MODELS.register_module()
class CLIPResNetWithAttention(CLIPResNet):
    """CLIP ResNet whose attention pool runs over every location (DenseCLIP).

    Args:
        model, pretrained, out_indices: as :class:`CLIPResNet`.
        input_resolution: the attention pool's positional embedding is resized to
            ``input_resolution / 32`` at load (DenseCLIP: 512 for segmentation, 1344 for
            detection); None keeps CLIP's grid.
        pos_embed: how each forward fits that table to the input's grid: ``'resize'``
            (bilinear; segmentation) or ``'crop'`` (its top-left corner; detection).
    """

    def __init__(self, model: str | os.PathLike | None = 'RN50',
                 pretrained: str | os.PathLike | None = None,
                 input_resolution: int | None = 512,
                 out_indices: tuple[int, ...] = (0, 1, 2, 3),
                 pos_embed: Literal['resize', 'crop'] = 'resize',
                 init_cfg: dict | None = None) -> None:
        super().__init__(model, pretrained, out_indices=out_indices, init_cfg=init_cfg)
        if pos_embed not in ('resize', 'crop'):
            raise ValueError(f"CLIPResNetWithAttention: pos_embed={pos_embed!r}; expected "
                             "'resize' or 'crop'")
        self.pos_embed = pos_embed
        if input_resolution is not None:
            pool = self.visual.attnpool
            grid = (input_resolution // 32,) * 2
            if square_grid(pool.positional_embedding) != grid:
                pool.positional_embedding = resize_pos_param(pool.positional_embedding, grid)

    def forward_dense(self, images: Tensor) -> DenseOutput:
        """x1..x4 (``out_indices``) as ``levels``, g and z (B, E, H/32, W/32) as features."""
        stages = self.stages(images)
        g, z = attention_pool(self.visual.attnpool, stages[-1], self.pos_embed)
        return DenseOutput(feats=z, grid=tuple(z.shape[-2:]), tokens=[stages[-1]],
                           images=images, levels=tuple(stages[i] for i in self.out_indices),
                           global_feats=g)


def residual_block(block: nn.Module, x: Tensor, drop_prob: float) -> Tensor:
    """An open_clip residual block with stochastic depth on both branches (DenseCLIP's
    ``ResidualAttentionBlock`` with ``drop_path``); the plain block when not dropping."""
    if drop_prob == 0.0 or not block.training:
        return block(x)
    x = x + drop_path(block.ls_1(block.attention(q_x=block.ln_1(x))), drop_prob, True)
    return x + drop_path(block.ls_2(block.mlp(block.ln_2(x))), drop_prob, True)


@MODELS.register_module()
@MMDET_MODELS.register_module()
class CLIPVisionTransformer(CLIPViT):
    """CLIP ViT with DenseCLIP's feature pyramid and joint-space embeddings of all tokens.

    Args:
        model, pretrained: as :class:`CLIPViT`.
        input_resolution: the positional embedding is resized bilinearly to
            ``input_resolution / patch`` at load (DenseCLIP: 640 -> 40x40); None keeps CLIP's.
        out_indices: blocks tapped into fpn1..fpn4 (DenseCLIP: 3, 5, 7, 11).
        drop_path_rate: stochastic depth, linear over the blocks (DenseCLIP: 0.1).
        get_embeddings: also compute g and z (``ln_post·proj`` of all tokens after the last
            block); the ``fpn_clip`` baseline does not.
        norm_cfg: the norm inside fpn1 (released: SyncBN; BN runs on one device too).
    """

    def __init__(self, model: str | os.PathLike | None = 'ViT-B-16',
                 pretrained: str | os.PathLike | None = None,
                 input_resolution: int | None = 640,
                 out_indices: tuple[int, ...] = (3, 5, 7, 11), drop_path_rate: float = 0.1,
                 get_embeddings: bool = True, norm_cfg: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(model, pretrained, pos_interp='bilinear', out_indices=out_indices,
                         init_cfg=init_cfg)
        if len(self.out_indices) != 4:
            raise ValueError(f'CLIPVisionTransformer: out_indices={out_indices}; fpn1..fpn4 '
                             'need four blocks')
        if input_resolution is not None:
            grid = (input_resolution // self.patch_size,) * 2
            if square_grid(self.visual.positional_embedding) != grid:
                self.visual.positional_embedding = resize_pos_param(
                    self.visual.positional_embedding, grid)
        self.get_embeddings = get_embeddings
        self.drop_probs = torch.linspace(0, drop_path_rate, len(self.blocks)).tolist()
        D = self.width
        norm = build_norm_layer(norm_cfg or dict(type='BN'), D)[1]
        if self.patch_size == 16:  # strides 4, 8, 16, 32 from the stride-16 tokens
            self.fpn1 = nn.Sequential(nn.GroupNorm(1, D), nn.ConvTranspose2d(D, D, 2, 2), norm,
                                      nn.GELU(), nn.ConvTranspose2d(D, D, 2, 2))
            self.fpn2 = nn.Sequential(nn.GroupNorm(1, D), nn.ConvTranspose2d(D, D, 2, 2))
            self.fpn3 = nn.GroupNorm(1, D)
            self.fpn4 = nn.Sequential(nn.GroupNorm(1, D), nn.MaxPool2d(2, 2))
        elif self.patch_size == 8:
            self.fpn1 = nn.Sequential(nn.GroupNorm(1, D), nn.ConvTranspose2d(D, D, 2, 2))
            self.fpn2 = nn.GroupNorm(1, D)
            self.fpn3 = nn.Sequential(nn.GroupNorm(1, D), nn.MaxPool2d(2, 2))
            self.fpn4 = nn.Sequential(nn.GroupNorm(1, D), nn.MaxPool2d(4, 4))
        else:
            raise ValueError(f'CLIPVisionTransformer: patch size {self.patch_size}; DenseCLIP '
                             'defines its pyramid for patch sizes 16 and 8')

    def embed(self, images: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Patch embedding, [CLS], bilinear position embedding and ln_pre.

        As released, the class embedding is added twice to the [CLS] token: once as the token
        and once in ``cls_pos = pos[0] + class_embedding`` (models.py@5eda47f
        ``CLIPVisionTransformer.forward``); kept, so released checkpoints give their outputs.
        """
        check_images(images, self.patch_size, 'CLIPVisionTransformer')
        visual = self.visual
        x = visual.conv1(images.to(visual.conv1.weight.dtype))  # (B, D, h, w)
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)  # (B, N, D)
        pos = visual.positional_embedding
        pos = resample_pos_embed(pos, grid, old_grid=square_grid(pos), mode='bilinear')
        cls = visual.class_embedding.to(x.dtype)
        pos = torch.cat([pos[:1] + cls, pos[1:]]).to(x.dtype)  # (1+N, D)
        x = torch.cat([cls.expand(x.shape[0], 1, -1), x], dim=1) + pos  # (B, 1+N, D)
        return visual.ln_pre(x), grid

    def _levels_and_tokens(self, images: Tensor) -> tuple[tuple[Tensor, ...], Tensor, tuple]:
        x, grid = self.embed(images)
        B = x.shape[0]
        taps = []
        for i, block in enumerate(self.blocks):
            x = residual_block(block, x, self.drop_probs[i])
            if i in self.out_indices:
                taps.append(x[:, 1:].transpose(1, 2).reshape(B, -1, *grid))  # (B, D, h, w)
        levels = tuple(fpn(t) for fpn, t in zip((self.fpn1, self.fpn2, self.fpn3, self.fpn4),
                                                 taps))
        return levels, x, grid

    def forward_dense(self, images: Tensor) -> DenseOutput:
        """fpn1..fpn4 as ``levels``; with ``get_embeddings``, g and z (B, E, H/p, W/p)."""
        if not self.get_embeddings:
            raise RuntimeError('CLIPVisionTransformer: get_embeddings=False computes no '
                               'joint-space features; set get_embeddings=True')
        levels, x, grid = self._levels_and_tokens(images)
        y = self.visual.ln_post(x) @ self.visual.proj  # (B, 1+N, E)
        z = y[:, 1:].transpose(1, 2).reshape(y.shape[0], -1, *grid)  # (B, E, h, w)
        return DenseOutput(feats=z, grid=grid, tokens=[x], images=images, levels=levels,
                           global_feats=y[:, 0])

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        """fpn1..fpn4: strides 4, 8, 16, 32 (patch 16)."""
        return self._levels_and_tokens(images)[0]
