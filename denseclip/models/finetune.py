"""Which CLIP weights a trained method fine-tunes, shared by both towers and every method.

CAT-Seg's ``CLIP_FINETUNE "attention"`` (cat_seg_model.py@6d3a188; reference notes §2.3) trains
only the query and value projections of every attention in both CLIP towers: the released CLIP
splits ``in_proj_weight`` into ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight``
(model_vpt.py ``Attention``) and freezes the rest, including the shared ``in_proj_bias``.
:func:`split_qkv` does the same split on ``nn.MultiheadAttention`` itself, so the blocks keep
running through torch's own attention, state-dict keys are the released ones, and a frozen key
projection is frozen exactly (a gradient mask would still let AdamW's decay move it).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

Finetune = Literal['attention_qv']


def split_qkv(attn: nn.MultiheadAttention) -> None:
    """Replace ``in_proj_weight`` (3D, D) by ``q_proj_weight``, ``k_proj_weight`` and
    ``v_proj_weight`` (D, D) each, in place; the attention computes the same function."""
    if not isinstance(attn, nn.MultiheadAttention):
        raise TypeError(f'split_qkv: {type(attn).__name__} is not an nn.MultiheadAttention')
    if attn.in_proj_weight is None:  # already split
        return
    q, k, v = attn.in_proj_weight.detach().chunk(3, dim=0)
    for name, weight in zip(('q', 'k', 'v'), (q, k, v)):
        setattr(attn, f'{name}_proj_weight', nn.Parameter(weight.clone()))
    attn.register_parameter('in_proj_weight', None)
    attn._qkv_same_embed_dim = False


def qkv_weight(attn: nn.MultiheadAttention) -> Tensor:
    """The (3D, D) input projection of an attention, split (:func:`split_qkv`) or not."""
    if attn.in_proj_weight is not None:
        return attn.in_proj_weight
    return torch.cat([attn.q_proj_weight, attn.k_proj_weight, attn.v_proj_weight])


def finetune_clip(tower: nn.Module, mode: Finetune) -> None:
    """Set which weights of one CLIP tower train.

    Args:
        tower: an image or text tower (every ``nn.MultiheadAttention`` in it is affected).
        mode: ``'attention_qv'``: split every attention (:func:`split_qkv`) and train only
            ``q_proj_weight`` and ``v_proj_weight``; everything else in ``tower`` is frozen.
    """
    if mode != 'attention_qv':
        raise ValueError(f"finetune_clip: mode={mode!r}; expected 'attention_qv'")
    attentions = [m for m in tower.modules() if isinstance(m, nn.MultiheadAttention)]
    if not attentions:
        raise TypeError(f"finetune_clip: {type(tower).__name__} has no nn.MultiheadAttention; "
                        "'attention_qv' needs open_clip's standard residual blocks")
    for attn in attentions:
        split_qkv(attn)
    tower.requires_grad_(False)
    for attn in attentions:
        attn.q_proj_weight.requires_grad_(True)
        attn.v_proj_weight.requires_grad_(True)
