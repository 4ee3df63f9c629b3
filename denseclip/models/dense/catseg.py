"""CAT-Seg's dense last block: "CAT-Seg: Cost Aggregation for Open-Vocabulary Semantic
Segmentation", Cho et al., CVPR 2024 (code: KU-CVLAB/CAT-Seg@6d3a188, model_vpt.py
``ResidualAttentionBlock.forward_dense``; reference notes §2.1).

The v-path of MaskCLIP, but the residual added to every token is the [CLS] token entering the
block, not the token itself:

    z_i = x_CLS + o(v(LN1 x_i)),    z_i <- z_i + MLP(LN2 z_i)

(the released block also projects q and k through ``out_proj`` and drops them).
"""
from __future__ import annotations

from torch import Tensor, nn

from denseclip.registry import MODELS

from .base import NUM_PREFIX_TOKENS, DenseAttention, Grid, block_qkv, merge_heads


@MODELS.register_module()
class CATSegAttention(DenseAttention):
    """v-path with the block input's [CLS] as every token's residual, then the FFN."""

    # The released CAT-Seg encoder is open_clip's ViT with one [CLS].
    supported_families = ('openclip',)

    def __init__(self) -> None:
        super().__init__(residual=True, ffn=True)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, grid: Grid) -> Tensor:
        return v

    def forward(self, block: nn.Module, x: Tensor, grid: Grid) -> Tensor:
        v = block_qkv(block, x)[2]
        z = x[:, :NUM_PREFIX_TOKENS] + block.ls_1(block.attn.out_proj(merge_heads(v)))
        return z + block.ls_2(block.mlp(block.ln_2(z)))
