"""DenseCLIP: context-aware prompting and pixel-text score maps for dense prediction.

Rao et al., "DenseCLIP: Language-Guided Dense Prediction with Context-Aware Prompting", CVPR
2022, https://arxiv.org/abs/2112.01518; raoyongming/DenseCLIP@5eda47f segmentation/denseclip/
(``denseclip.py`` ``after_extract_feat``, ``models.py`` ``ContextDecoder``, ``heads.py``).
Against plain fine-tuning: the class texts (learned context + name, :class:`ContextPrompt`) are
updated by a small transformer decoder that attends to the image's own features, and their
cosine with every pixel (the score map) enters the feature pyramid and an auxiliary loss.

    t = w + γ ⊙ ContextDecoder(w, [g; z])       γ learnable, init 1e-4    (context-aware prompt)
    s = cos(z, t)                               no temperature            (score map)
    x_i <- [x_i; s] at ``score_concat_index``   -> FPN neck -> FPNHead    (decoder logits)
    loss = CE(FPNHead) + 0.4 · CE(s / τ)        τ = 0.07                  (identity loss)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.structures import SegDataSample
from mmseg.utils import add_prefix
from torch import Tensor, nn

from denseclip.models.backbones import DenseOutput
from denseclip.registry import MMDET_MODELS, MODELS

from .base import OpenVocabHead


def multi_head_attention(q: Tensor, k: Tensor, v: Tensor, num_heads: int) -> Tensor:
    """softmax(q kᵀ / sqrt(d)) v per head, (B, N, C) x (B, M, C) -> (B, N, C)."""
    B, N, C = q.shape
    q, k, v = (t.reshape(B, t.shape[1], num_heads, -1).transpose(1, 2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v)  # (B, nh, N, C/nh)
    return out.transpose(1, 2).reshape(B, N, C)


class DecoderAttention(nn.Module):
    """DenseCLIP's ``Attention``: q/k/v projections without bias, an output projection with
    bias, dropout on the output only."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        out = multi_head_attention(self.q_proj(q), self.k_proj(k), self.v_proj(v),
                                   self.num_heads)
        return self.proj_drop(self.proj(out))


class ContextDecoderLayer(nn.Module):
    """Pre-norm self-attention over the texts, cross-attention to the image, MLP."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = DecoderAttention(dim, num_heads, dropout)
        self.cross_attn = DecoderAttention(dim, num_heads, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 4), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(dim * 4, dim))

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        q = self.norm1(x)
        x = x + self.self_attn(q, q, q)
        x = x + self.cross_attn(self.norm2(x), memory, memory)
        return x + self.dropout(self.mlp(self.norm3(x)))


@MODELS.register_module()
@MMDET_MODELS.register_module()
class ContextDecoder(BaseModule):
    """The text-to-image transformer decoder of context-aware prompting.

    Args:
        transformer_width: decoder width (DenseCLIP configs: 256).
        transformer_heads: heads (4).
        transformer_layers: layers (3 in the segmentation configs; the class default is 6).
        visual_dim: E, the joint-space width of texts and image features.
        dropout: on attention outputs and the MLP (0.1).

    Weights start trunc_normal(0.02), biases 0, LayerNorms 1/0 (models.py ``_init_weights``).
    """

    def __init__(self, transformer_width: int = 256, transformer_heads: int = 4,
                 transformer_layers: int = 6, visual_dim: int = 1024, dropout: float = 0.1,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        W = transformer_width
        self.memory_proj = nn.Sequential(nn.LayerNorm(visual_dim), nn.Linear(visual_dim, W),
                                         nn.LayerNorm(W))
        self.text_proj = nn.Sequential(nn.LayerNorm(visual_dim), nn.Linear(visual_dim, W))
        self.decoder = nn.ModuleList(
            ContextDecoderLayer(W, transformer_heads, dropout) for _ in range(transformer_layers))
        self.out_proj = nn.Sequential(nn.LayerNorm(W), nn.Linear(W, visual_dim))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, text: Tensor, visual: Tensor) -> Tensor:
        """Δ for every text given an image's tokens.

        Args:
            text: (B, K, E) text embeddings w.
            visual: (B, 1 + hw, E) the image's [g; z] tokens.

        Returns:
            (B, K, E) the update Δ (scaled by γ outside).
        """
        memory = self.memory_proj(visual)  # (B, 1+hw, W)
        x = self.text_proj(text)  # (B, K, W)
        for layer in self.decoder:
            x = layer(x, memory)
        return self.out_proj(x)


def context_aware_text(dense: DenseOutput, text: Tensor, context_decoder: ContextDecoder | None,
                       gamma: Tensor | None, owner: str) -> Tensor:
    """t (B, K, E): the prompt's embeddings w, updated from the image if a context decoder is
    set (``after_extract_feat``: memory [g; z], t = w + γ Δ). The segmentation head and the
    detectors (:mod:`denseclip.models.detectors.denseclip`) share it.

    Args:
        dense: the backbone's output: z (B, E, h, w) and g (B, E).
        text: (K, 1, E) prompt embeddings w, one prompt per class.
        context_decoder: the :class:`ContextDecoder`, or None (t = w).
        gamma: (E,) γ (ignored without a decoder).
        owner: the caller's name, for messages.
    """
    if text.shape[1] != 1:
        raise ValueError(f'{owner}: text has {text.shape[1]} prompts per class; DenseCLIP uses '
                         'one (ContextPrompt num_sets=1 or one template)')
    z = dense.feats
    B, E = z.shape[:2]
    w = text[:, 0].to(z.dtype).expand(B, -1, -1)  # (B, K, E)
    if context_decoder is None:
        return w
    if dense.global_feats is None:
        raise ValueError(f'{owner}: the context decoder attends to [g; z], but the backbone '
                         'gives no global_feats; use CLIPResNetWithAttention or '
                         'CLIPVisionTransformer(get_embeddings=True)')
    visual = torch.cat([dense.global_feats[:, None], z.flatten(2).transpose(1, 2)],
                       dim=1)  # (B, 1+hw, E)
    return w + gamma * context_decoder(w, visual)


@MODELS.register_module()
class IdentityHead(BaseDecodeHead):
    """A decode head whose logits are its input, for mmseg's loss path on DenseCLIP's score map
    (heads.py ``IdentityHead``): ``loss_by_feat(s / τ, data_samples)`` resizes, ignores 255
    and weighs the cross-entropy as configured (DenseCLIP: 0.4)."""

    def __init__(self, loss_decode: dict, ignore_index: int = 255,
                 align_corners: bool = False) -> None:
        # The channel and class counts only size conv_seg, which the identity drops.
        super().__init__(in_channels=1, channels=1, num_classes=1, threshold=0.0,
                         loss_decode=loss_decode, ignore_index=ignore_index,
                         align_corners=align_corners, init_cfg=None)
        self.conv_seg = None

    def forward(self, inputs: Tensor) -> Tensor:
        return inputs


@MODELS.register_module()
class DenseCLIPHead(OpenVocabHead):
    """DenseCLIP's text-conditioned decoder (see the module docstring).

    Args:
        neck: the FPN over the levels, the score map concatenated into one of them (DenseCLIP:
            mmseg ``FPN``, in_channels ``[256, 512, 1024, 2048 + K]`` for RN50).
        decode_head: mmseg ``FPNHead`` (Semantic FPN) with K classes.
        context_decoder: a :class:`ContextDecoder` config, or None (no context-aware update).
        identity_head: an :class:`IdentityHead` config (the auxiliary loss on s / τ), or None.
        score_concat_index: the level the score map joins (ResNet 3, ViT 2).
        tau: temperature of the identity loss (and of score-map predictions).
        gamma_init: initial γ, per channel (1e-4).
        test_output: ``'decoder'``: FPNHead logits, over the training vocabulary only (the
            FPN input and classifier are sized by K), the published protocol; ``'score_map'``:
            s / τ, defined for any vocabulary (open-vocabulary evaluation).
    """

    def __init__(self, *, neck: dict, decode_head: dict, context_decoder: dict | None = None,
                 identity_head: dict | None = None, score_concat_index: int = 3,
                 tau: float = 0.07, gamma_init: float = 1e-4,
                 test_output: Literal['decoder', 'score_map'] = 'decoder',
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if test_output not in ('decoder', 'score_map'):
            raise ValueError(f"DenseCLIPHead: test_output={test_output!r}; expected 'decoder' "
                             "or 'score_map'")
        self.neck = MODELS.build(neck)
        self.decode_head = MODELS.build(decode_head)
        self.context_decoder = None
        if context_decoder is not None:
            self.context_decoder = MODELS.build(context_decoder)
            embed_dim = self.context_decoder.out_proj[1].out_features
            self.gamma = nn.Parameter(torch.full((embed_dim,), gamma_init))  # (E,)
        self.identity_head = MODELS.build(identity_head) if identity_head is not None else None
        self.score_concat_index = score_concat_index
        self.tau = tau
        self.test_output = test_output

    def class_embeddings(self, dense: DenseOutput, text: Tensor) -> Tensor:
        """t (B, K, E): :func:`context_aware_text` with this head's decoder and γ."""
        return context_aware_text(dense, text, self.context_decoder,
                                  getattr(self, 'gamma', None), type(self).__name__)

    @staticmethod
    def score_map(z: Tensor, t: Tensor) -> Tensor:
        """s = cos(z, t), (B, E, h, w) x (B, K, E) -> (B, K, h, w); no temperature."""
        return torch.einsum('bchw,bkc->bkhw', F.normalize(z, dim=1), F.normalize(t, dim=2))

    def forward(self, dense: DenseOutput, text: Tensor) -> tuple[Tensor, Tensor]:
        """FPNHead logits (B, K, H/4, W/4) and the score map (B, K, h, w)."""
        score = self.score_map(dense.feats, self.class_embeddings(dense, text))
        levels = list(dense.levels)
        i = self.score_concat_index
        levels[i] = torch.cat([levels[i], score.to(levels[i].dtype)], dim=1)
        return self.decode_head(self.neck(levels)), score

    def loss(self, dense: DenseOutput, text: Tensor,
             data_samples: Sequence[SegDataSample]) -> dict[str, Tensor]:
        """``decode.loss_ce`` (FPNHead) and ``aux_identity.loss_ce`` (0.4 · CE(s / τ))."""
        logits, score = self(dense, text)
        losses = add_prefix(self.decode_head.loss_by_feat(logits, data_samples), 'decode')
        if self.identity_head is not None:
            losses.update(add_prefix(
                self.identity_head.loss_by_feat(score / self.tau, data_samples), 'aux_identity'))
        return losses

    def predict(self, dense: DenseOutput, text: Tensor) -> Tensor:
        """Decoder logits, or s / τ with ``test_output='score_map'`` (no FPN: any K)."""
        if self.test_output == 'score_map':
            return self.score_map(dense.feats, self.class_embeddings(dense, text)) / self.tau
        return self(dense, text)[0]
