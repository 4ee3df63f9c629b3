"""The last-block interface every training-free dense method plugs into.

Blocks 0..L-2 of CLIP's image tower run unchanged; the last block is replaced by a registered
:class:`DenseAttention`. It reads ``in_proj_weight``/``in_proj_bias``/``out_proj`` from the
open_clip block (never monkeypatching open_clip), computes its own attention, and keeps or drops
the block's residual and FFN as its paper does (reference notes §14.1):

    z = [x +] ls_1(o(attend(q, k, v)))      # o = out_proj, residual if ``residual``
    z = z + ls_2(MLP(LN2(z)))               # only if ``ffn``

``vanilla`` (:class:`VanillaAttention`) is the unchanged block applied to every token.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from denseclip.models.finetune import qkv_weight
from denseclip.registry import MODELS

Grid = tuple[int, int]
# The tower families (denseclip.models.backbones.towers); a method lists those it runs on.
ALL_VIT_FAMILIES = ('openclip', 'eva', 'siglip')
# The 'openclip' family's one [CLS]; methods that run on other families use num_prefix().
NUM_PREFIX_TOKENS = 1


def num_prefix(x: Tensor, grid: Grid) -> int:
    """P, the tokens before the h*w patch tokens of a (B, P+N, D) sequence."""
    P = x.shape[-2] - grid[0] * grid[1]
    if P < 0:
        raise ValueError(f'{x.shape[-2]} tokens cannot hold the {grid} patch grid')
    return P


def block_qkv(block: nn.Module, x: Tensor, grid: Grid | None = None
              ) -> tuple[Tensor, Tensor, Tensor]:
    """q, k, v of a residual block for tokens ``x``.

    Args:
        block: an open_clip ``ResidualAttentionBlock`` or a tower's view with its interface
            (``attn`` holds ``in_proj_weight``, ``in_proj_bias``, ``out_proj``, ``num_heads``).
        x: (B, T, D) tokens entering the block.
        grid: the (h, w) patch grid; needed by towers with rotary position embeddings (EVA),
            whose q and k patch tokens are rotated here, before any method's attention.

    Returns:
        q, k, v, each (B, nh, T, hd).
    """
    attn = block.attn
    qkv = F.linear(block.ln_1(x), qkv_weight(attn), attn.in_proj_bias)  # (B, T, 3D)
    B, T, _ = qkv.shape
    qkv = qkv.reshape(B, T, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hd)
    q, k, v = qkv[0], qkv[1], qkv[2]
    if getattr(attn, 'has_rope', False):
        if grid is None:
            raise TypeError('block_qkv: this tower has rotary position embeddings (EVA); pass '
                            'the patch grid')
        q, k = attn.rope(q, k, grid)
    return q, k, v


def merge_heads(x: Tensor) -> Tensor:
    """(B, nh, T, hd) -> (B, T, nh*hd)."""
    B, nh, T, hd = x.shape
    return x.transpose(1, 2).reshape(B, T, nh * hd)


def scaled_scores(a: Tensor, b: Tensor) -> Tensor:
    """s·a bᵀ with s = hd^-1/2: (B, nh, T, hd) each -> (B, nh, T, T)."""
    return a @ b.transpose(-2, -1) * a.shape[-1] ** -0.5


def check_block(block: nn.Module) -> None:
    """Raise if ``block`` is not the standard attention block dense methods are defined on."""
    attn = getattr(block, 'attn', None)
    names = ('in_proj_weight', 'in_proj_bias', 'out_proj', 'num_heads')
    if attn is None or not all(hasattr(attn, n) for n in names):
        raise TypeError(f'{type(block).__name__}: dense methods need a block whose attention '
                        f'has {names} (open_clip ResidualAttentionBlock)')
    for extra in ('ln_inner', 'head_scale'):
        if isinstance(getattr(attn, extra, None), (nn.Module, nn.Parameter)) and not isinstance(
                getattr(attn, extra), nn.Identity):
            raise TypeError(f'{type(attn).__name__}.{extra}: this attention variant is not '
                            'supported by the dense methods')


def check_support(attention: type | nn.Module, family: str) -> None:
    """Raise a TypeError naming the method, the tower family and what the method supports,
    unless the attention (class or instance) lists ``family`` in ``supported_families``."""
    cls = attention if isinstance(attention, type) else type(attention)
    supported = getattr(cls, 'supported_families', ALL_VIT_FAMILIES)
    if family not in supported:
        raise TypeError(f'{cls.__name__} does not support {family!r} image towers; it supports '
                        f'{tuple(supported)}')


class DenseAttention(nn.Module):
    """Base of the last-block replacements; subclasses define :meth:`attend`.

    ``supported_families``: the tower families (:mod:`denseclip.models.backbones.towers`) the
    method runs on; the backbone refuses the others when it is built.

    Args:
        residual: keep the block's residual connection around the attention.
        ffn: keep the block's MLP (with its own residual).
    """

    supported_families: tuple[str, ...] = ALL_VIT_FAMILIES

    def __init__(self, *, residual: bool = True, ffn: bool = True) -> None:
        super().__init__()
        self.residual = residual
        self.ffn = ffn

    def attend(self, q: Tensor, k: Tensor, v: Tensor, grid: Grid) -> Tensor:
        """Per-head attention output (B, nh, T, hd) from q, k, v of shape (B, nh, T, hd)."""
        raise NotImplementedError

    def score_terms(self, q: Tensor, k: Tensor, grid: Grid) -> list[tuple[Tensor, Tensor | None]]:
        """The attention map as a sum of softmaxes, A = Σ_t softmax(scores_t + prior_t).

        Methods whose map has this form expose it, so that attention-level terms can be mixed
        into any of them (ResCLIP's RCS and SFR, :mod:`denseclip.models.dense.resclip`);
        :meth:`attend` stays their fast path (fused SDPA, no map materialised).

        Returns:
            per term, the (B, nh, T, T) pre-softmax scores and the (T, T) additive prior
            (NACLIP's Ω), or None.
        """
        raise NotImplementedError(f'{type(self).__name__} does not expose its attention as '
                                  'softmax terms (score_terms)')

    def finish(self, block: nn.Module, x: Tensor, out: Tensor) -> Tensor:
        """The block around the attention output ``out`` (B, nh, T, hd): out_proj, ls_1,
        the residual and the FFN as configured; ``x`` (B, T, D) the block's input."""
        z = block.ls_1(block.attn.out_proj(merge_heads(out)))
        if self.residual:
            z = x + z
        if self.ffn:
            z = z + block.ls_2(block.mlp(block.ln_2(z)))
        return z

    def forward(self, block: nn.Module, x: Tensor, grid: Grid) -> Tensor:
        """Run the modified last block.

        Args:
            block: the open_clip last block.
            x: (B, 1+N, D) tokens entering it, [CLS] first.
            grid: (h, w) patch grid, N = h*w.

        Returns:
            (B, 1+N, D) tokens leaving the block.
        """
        q, k, v = block_qkv(block, x, grid)
        return self.finish(block, x, self.attend(q, k, v, grid))

    def dense_forward(self, blocks: nn.ModuleList, tokens: list[Tensor], grid: Grid,
                      images: Tensor) -> tuple[Tensor, Grid, Tensor | None]:
        """Patch tokens leaving the modified last block, and their grid.

        The backbone calls this; methods that need more than the last block's input (a proxy
        encoder on the image, earlier blocks) override it.

        Args:
            blocks: all blocks of the image tower.
            tokens: the trunk's tokens, [after ln_pre, after block 0, ..., after block L-2],
                each (B, 1+N, D).
            grid: the CLIP patch grid (h, w).
            images: the (B, 3, H, W) input.

        Returns:
            (B, N', D) patch tokens, their (h', w') grid (N' = h'*w') and the (B, D) [CLS]
            token leaving the block (None for a method that computes none, or a tower
            without one).
        """
        out = self(blocks[-1], tokens[-1], grid)
        P = num_prefix(out, grid)
        return out[:, P:], grid, out[:, 0] if P else None

    def extra_repr(self) -> str:
        return f'residual={self.residual}, ffn={self.ffn}'


@MODELS.register_module()
class VanillaAttention(DenseAttention):
    """CLIP's own q-k attention: softmax(s·q kᵀ) v, residual and FFN kept (the baseline)."""

    def attend(self, q: Tensor, k: Tensor, v: Tensor, grid: Grid) -> Tensor:
        return F.scaled_dot_product_attention(q, k, v)

    def score_terms(self, q: Tensor, k: Tensor, grid: Grid) -> list[tuple[Tensor, None]]:
        return [(scaled_scores(q, k), None)]


def require_score_terms(attention: DenseAttention, owner: str) -> None:
    """Raise unless ``attention`` implements :meth:`DenseAttention.score_terms` (the methods
    that mix terms into another attention's map wrap only those)."""
    if type(attention).score_terms is DenseAttention.score_terms:
        raise TypeError(f'{owner}: {type(attention).__name__} does not expose its attention as '
                        'softmax terms (score_terms); wrap VanillaAttention, SCLIPAttention, '
                        'ClearCLIPAttention or NACLIPAttention')
