"""The backbone contract, and the ViT tower families the dense methods run on.

A dense backbone states (detectron2's ``output_shape()`` in spirit):

============================  ====================================================
``output_stride``             input sizes must be multiples of it (the patch size)
``embed_dim``                 E, the joint image-text width of the dense features
``num_prefix_tokens``         P: 1 for CLIP's [CLS], 0 for SigLIP, 1 + registers
``family``                    ``'openclip'``, ``'eva'``, ``'siglip'``, ``'resnet'``,
                              ``'convnext'`` (what a method may refuse)
last block's q/k/v            ``block_qkv(block, x, grid)`` on ``blocks[-1]``
============================  ====================================================

Every ViT family is presented to the methods through open_clip's residual-block interface
(``ln_1``, ``attn.in_proj_weight``/``in_proj_bias``/``out_proj``/``num_heads``, ``ls_1``,
``ln_2``, ``mlp``, ``ls_2``; :mod:`denseclip.models.dense.base`), so a method is written once:

* ``openclip``: open_clip's own ``VisionTransformer`` (OpenAI, LAION, DataComp/DFN, MetaCLIP,
  CLIPA, any size and patch); its blocks are used as they are.
* ``eva``: timm's ``Eva`` inside open_clip (EVA02-CLIP). :class:`TimmBlock` views an
  ``EvaBlock``: the sub-LN after the attention (``attn.norm``) belongs to ``out_proj``, SwiGLU
  with its inner LN is ``mlp``, ``gamma_1``/``gamma_2`` are ``ls_1``/``ls_2``, and the rotary
  embedding of the patch grid is applied to q and k (never to the prefix tokens) inside
  ``block_qkv`` before the method's own attention, exactly as ``EvaAttention`` does.
  Position embeddings resampled with ``pos_interp='size'`` use timm's own (antialiased bicubic)
  resampling on both timm families, so the vanilla path is the tower's own forward at any size;
  ``'scale_factor'`` and ``'bilinear'`` are the methods' forms, as for open_clip towers.
* ``siglip``: timm's ``VisionTransformer`` with a MAP head (SigLIP, SigLIP 2): no [CLS] (P = 0),
  and the image embedding is an attention pool over all tokens. Dense features apply the pool's
  value path to each token (:meth:`TimmViTTower.post`), as MaskCLIP does for CLIP ResNet's
  attention pool: the pool with a single token to attend to.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from open_clip.timm_model import TimmModel
from open_clip.transformer import VisionTransformer
from timm.layers import apply_rot_embed_cat, resample_abs_pos_embed
from torch import Tensor, nn

from denseclip.clip import resample_pos_embed
from denseclip.clip.pos_embed import InterpMode
from denseclip.models.dense.base import ALL_VIT_FAMILIES, Grid


class _Scale(nn.Module):
    """``gamma * x`` (EVA's layer scale), or the identity when the block has none."""

    def __init__(self, gamma: nn.Parameter | None) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, x: Tensor) -> Tensor:
        return x if self.gamma is None else self.gamma * x


class TimmAttention:
    """open_clip's ``nn.MultiheadAttention`` interface over a timm ``Attention``/``EvaAttention``.

    ``in_proj_weight`` (3D, D) and ``in_proj_bias`` (3D) are the fused q/k/v projection (EVA's
    separate q/k/v weights and its q_bias, zero k bias and v_bias concatenated); ``out_proj`` is
    the attention's inner norm (EVA's sub-LN; Identity elsewhere) followed by ``proj``.
    """

    def __init__(self, attn: nn.Module, rope: Callable[[Grid], Tensor] | None) -> None:
        for name in ('q_norm', 'k_norm'):
            if not isinstance(getattr(attn, name, nn.Identity()), nn.Identity):
                raise TypeError(f'{type(attn).__name__}.{name}: q/k normalisation is not '
                                'supported by the dense methods')
        if getattr(attn, 'gate', None) is not None:
            raise TypeError(f'{type(attn).__name__}.gate: gated attention is not supported by '
                            'the dense methods')
        self.module = attn
        self.num_heads = attn.num_heads
        self.out_proj = nn.Sequential(getattr(attn, 'norm', nn.Identity()), attn.proj)
        self._rope = rope

    @property
    def in_proj_weight(self) -> Tensor:
        attn = self.module
        if getattr(attn, 'qkv', None) is not None:
            return attn.qkv.weight
        return torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])

    @property
    def in_proj_bias(self) -> Tensor | None:
        attn = self.module
        if getattr(attn, 'qkv', None) is not None:
            if getattr(attn, 'q_bias', None) is not None:  # EVA: q and v biases, k has none
                return torch.cat([attn.q_bias, attn.k_bias, attn.v_bias])
            return attn.qkv.bias
        biases = [getattr(attn, f'{n}_proj').bias for n in 'qkv']
        if all(b is None for b in biases):
            return None
        return torch.cat([b if b is not None else torch.zeros_like(attn.q_proj.weight[:, 0])
                          for b in biases])

    @property
    def has_rope(self) -> bool:
        return self._rope is not None

    def rope(self, q: Tensor, k: Tensor, grid: Grid) -> tuple[Tensor, Tensor]:
        """q, k (B, nh, P+N, hd) with the grid's rotary embedding on their N patch tokens."""
        embed = self._rope(grid)
        P = q.shape[-2] - grid[0] * grid[1]
        if P < 0:
            raise ValueError(f'rotary embedding for grid {grid} given {q.shape[-2]} tokens')
        half = getattr(self.module, 'rotate_half', False)

        def rotate(t: Tensor) -> Tensor:
            patches = apply_rot_embed_cat(t[:, :, P:], embed.to(t.dtype), half=half)
            return torch.cat([t[:, :, :P], patches], dim=2)

        return rotate(q), rotate(k)


class TimmBlock(nn.Module):
    """open_clip's ``ResidualAttentionBlock`` interface over a timm ``Block``/``EvaBlock``.

    Calling it runs the timm block itself (with the grid's rotary embedding for EVA). It holds
    the block's modules without re-registering them: parameters keep their tower names.
    """

    def __init__(self, block: nn.Module, rope: Callable[[Grid], Tensor] | None = None) -> None:
        super().__init__()
        object.__setattr__(self, 'block', block)
        object.__setattr__(self, 'attn', TimmAttention(block.attn, rope))
        object.__setattr__(self, 'ln_1', block.norm1)
        object.__setattr__(self, 'ln_2', block.norm2)
        object.__setattr__(self, 'mlp', block.mlp)
        if hasattr(block, 'ls1'):  # timm ViT
            object.__setattr__(self, 'ls_1', block.ls1)
            object.__setattr__(self, 'ls_2', block.ls2)
        else:  # EVA
            object.__setattr__(self, 'ls_1', _Scale(block.gamma_1))
            object.__setattr__(self, 'ls_2', _Scale(block.gamma_2))
        object.__setattr__(self, '_rope', rope)

    def forward(self, x: Tensor, grid: Grid | None = None) -> Tensor:
        if self._rope is None:
            return self.block(x)
        if grid is None:
            raise TypeError('EVA blocks need the patch grid for their rotary embedding')
        return self.block(x, rope=self._rope(grid))


class ViTTower:
    """What the dense backbone needs from a ViT image tower (the contract above)."""

    family: str
    num_prefix_tokens: int
    patch_size: int
    width: int
    embed_dim: int
    grid_size: Grid
    blocks: list | nn.ModuleList

    def embed(self, images: Tensor, mode: InterpMode) -> tuple[Tensor, Grid]:
        """Tokens (B, P+N, D) entering block 0 and the patch grid (h, w)."""
        raise NotImplementedError

    def run_block(self, block: nn.Module, x: Tensor, grid: Grid) -> Tensor:
        """One of the tower's own blocks, unchanged."""
        return block(x)

    def post(self, patches: Tensor) -> Tensor:
        """Per-token map to the joint space: (B, N, D) after the last block -> (B, N, E)."""
        raise NotImplementedError

    def pooled(self, tokens: Tensor) -> Tensor:
        """The tower's own image embedding (B, E) from the last block's (B, P+N, D) output."""
        raise NotImplementedError


class OpenCLIPTower(ViTTower):
    family = 'openclip'

    def __init__(self, visual: VisionTransformer) -> None:
        if visual.attn_pool is not None:
            raise TypeError('CLIPViT: open_clip towers with an attentional pooler (CoCa) are '
                            'not supported')
        self.visual = visual
        self.blocks = visual.transformer.resblocks
        self.num_prefix_tokens = 1
        self.patch_size = visual.patch_size[0]
        self.width = visual.conv1.out_channels
        self.embed_dim = visual.output_dim
        self.grid_size = tuple(visual.grid_size)

    def embed(self, images: Tensor, mode: InterpMode) -> tuple[Tensor, Grid]:
        visual = self.visual
        x = visual.conv1(images.to(visual.conv1.weight.dtype))  # (B, D, h, w)
        grid = tuple(x.shape[-2:])
        x = x.flatten(2).transpose(1, 2)  # (B, N, D)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)  # (B, 1, D)
        pos = resample_pos_embed(visual.positional_embedding, grid, old_grid=self.grid_size,
                                 num_prefix_tokens=1, mode=mode)
        x = torch.cat([cls, x], dim=1) + pos.to(x.dtype)  # (B, 1+N, D)
        return visual.ln_pre(x), grid

    def post(self, patches: Tensor) -> Tensor:
        return self.visual.ln_post(patches) @ self.visual.proj

    def pooled(self, tokens: Tensor) -> Tensor:
        return self.visual._pool(tokens)[0] @ self.visual.proj


class TimmViTTower(ViTTower):
    """timm ``VisionTransformer`` (SigLIP) or ``Eva`` (EVA02) trunks inside open_clip."""

    def __init__(self, visual: TimmModel) -> None:
        trunk = visual.trunk
        self.visual = visual
        self.trunk = trunk
        kind = type(trunk).__name__
        self.family = 'eva' if kind == 'Eva' else 'siglip'
        if kind == 'VisionTransformer' and getattr(trunk, 'global_pool', None) != 'map':
            raise TypeError(f'CLIPViT: a timm VisionTransformer tower with '
                            f'global_pool={trunk.global_pool!r}; the dense path supports the '
                            "SigLIP towers ('map' pool) and EVA02")
        if self.family == 'eva' and getattr(trunk, 'rope_mixed', False):
            raise TypeError('CLIPViT: EVA towers with depth-dependent (mixed) RoPE are not '
                            'supported')
        rope = None
        if getattr(trunk, 'rope', None) is not None:
            def rope(grid: Grid) -> Tensor:
                return rope_embed(trunk.rope, grid)
        self.blocks = [TimmBlock(b, rope) for b in trunk.blocks]
        self.num_prefix_tokens = trunk.num_prefix_tokens
        self.patch_size = trunk.patch_embed.patch_size[0]
        self.width = trunk.embed_dim
        self.grid_size = tuple(trunk.patch_embed.grid_size)
        with torch.no_grad():
            self.embed_dim = self.post(torch.zeros(1, 1, self.width)).shape[-1]

    def embed(self, images: Tensor, mode: InterpMode) -> tuple[Tensor, Grid]:
        trunk = self.trunk
        pe = trunk.patch_embed
        x = pe.proj(images.to(pe.proj.weight.dtype))  # (B, D, h, w)
        grid = tuple(x.shape[-2:])
        x = pe.norm(x.flatten(2).transpose(1, 2))  # (B, N, D)
        prefix = [t.expand(x.shape[0], -1, -1) for t in (trunk.cls_token, trunk.reg_token)
                  if t is not None]
        pos = trunk.pos_embed
        if pos is not None:
            P_pos = 0 if trunk.no_embed_class else self.num_prefix_tokens
            if mode == 'size' and grid != self.grid_size:
                # the tower's own resampling (timm's dynamic-size path: antialiased bicubic)
                pos = resample_abs_pos_embed(pos, new_size=grid, old_size=self.grid_size,
                                             num_prefix_tokens=P_pos)[0]
            else:  # the methods' own forms ('scale_factor', 'bilinear'; DESIGN.md §4)
                pos = resample_pos_embed(pos[0], grid, old_grid=self.grid_size,
                                         num_prefix_tokens=P_pos, mode=mode)
            pos = pos.to(x.dtype)
            if trunk.no_embed_class:
                x = x + pos
        x = torch.cat(prefix + [x], dim=1)
        if pos is not None and not trunk.no_embed_class:
            x = x + pos
        return trunk.norm_pre(x), grid

    def run_block(self, block: TimmBlock, x: Tensor, grid: Grid) -> Tensor:
        return block(x, grid)

    def post(self, patches: Tensor) -> Tensor:
        trunk = self.trunk
        x = trunk.norm(patches)
        if self.family == 'siglip':
            # Deviation: SigLIP has no per-token path into its joint space (its MAP head pools
            # all tokens); each token goes through the head as if it were the only one to
            # attend to (map_values), as MaskCLIP reads CLIP ResNet's attention pool. Methods
            # that need a [CLS] refuse this family (supported_families).
            x = map_values(trunk.attn_pool, x)
        x = trunk.head(trunk.fc_norm(x))
        return self.visual.head(x)

    def pooled(self, tokens: Tensor) -> Tensor:
        return self.visual.head(self.trunk.forward_head(self.trunk.norm(tokens)))


def rope_embed(rope: nn.Module, grid: Grid) -> Tensor:
    """timm's concatenated sin/cos rotary embedding (N, 2*dim) for any (h, w) patch grid.

    A tower built for a fixed size caches the embedding of its training grid; other grids are
    built from the same frequency bands by timm's own builder, as its dynamic-size mode does
    (``get_embed(shape=...)``), so a window of any size gets EVA's own rotation.
    """
    if rope.feat_shape is not None and tuple(rope.feat_shape) == tuple(grid):
        return rope.get_embed()
    return rope._build_embed_cat(list(grid), rope.bands, augment=False)


def map_values(pool: nn.Module, x: Tensor) -> Tensor:
    """A MAP head (timm ``AttentionPoolLatent``) applied to each token on its own.

    With one token to attend to, the latent query's softmax is 1, so the pool returns
    ``y + MLP(LN(y))`` with ``y = proj(v(x))``: the pool's value path, per token (the same
    reading of an attention pool as MaskCLIP's for CLIP ResNets). ``x`` (..., D) -> (..., D').
    """
    if getattr(pool, 'pos_embed', None) is not None:
        raise TypeError('map_values: attention pools with their own position embedding are '
                        'not supported')
    D = x.shape[-1]
    y = pool.proj(F.linear(x, pool.kv.weight[D:], None if pool.kv.bias is None
                           else pool.kv.bias[D:]))
    if pool.mlp is not None:
        y = y + pool.mlp(pool.norm(y))
    return y


def vit_tower(visual: nn.Module) -> ViTTower:
    """The :class:`ViTTower` of an open_clip image tower, or a TypeError naming what is
    supported."""
    if isinstance(visual, VisionTransformer):
        return OpenCLIPTower(visual)
    if isinstance(visual, TimmModel) and type(visual.trunk).__name__ in ('Eva',
                                                                         'VisionTransformer'):
        return TimmViTTower(visual)
    raise TypeError(f'CLIPViT: a {type(visual).__name__} image tower '
                    f'({type(getattr(visual, "trunk", visual)).__name__}) is not a ViT family '
                    f'the dense methods run on; supported: {ALL_VIT_FAMILIES} (open_clip ViTs, '
                    "EVA02, SigLIP/SigLIP 2); use type='CLIPResNet' for ResNets and "
                    "type='CLIPConvNeXt' for ConvNeXt towers")
