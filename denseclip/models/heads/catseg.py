"""CAT-Seg: cost aggregation over a pixel-text cost volume.

Cho et al., "CAT-Seg: Cost Aggregation for Open-Vocabulary Semantic Segmentation", CVPR 2024,
https://arxiv.org/abs/2303.11797; KU-CVLAB/CAT-Seg@6d3a188 (``modeling/transformer/model.py``
``Aggregator``, ``cat_seg_model.py``; reference notes §2). Against a pixel-text score map read
off once, the cost volume itself is refined, jointly over space and over classes, guided by the
image and the text, and decoded to logits at 4x the CLIP grid:

    C = cos(F, T)                      (B, P, T, h, w)                eq. 1 (CostVolume)
    E = Conv7x7(C)                     (B, C_h, T, h, w)              cost embedding
    E <- SpatialAgg(E, LN g)           two Swin blocks per class       eq. 2
    E <- ClassAgg(E, u)                linear attention over classes   eq. 3
    logits = Up(Up(E, g_48), g_96)     (B, T, 4h, 4w)                 upsampling decoder
    loss = BCE(logits, one-hot)        ignored pixels: all-zero targets, kept in the mean (§2.3)

g = ReLU(Conv3x3(F)), u_t = ReLU(Linear(mean_p T_{t,p})), g_48 / g_96 from CLIP's blocks 3 / 7
(ViT-B; L: 7 / 15) through ConvT(2x2, s2) / ConvT(4x4, s4) then Conv3x3 + ReLU.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.structures import SegDataSample
from timm.layers import Mlp
from timm.models.swin_transformer import window_partition, window_reverse
from torch import Tensor, nn

from denseclip.models.backbones import DenseOutput
from denseclip.registry import MODELS

from .base import OpenVocabHead
from .cost_volume import CostVolume


def shifted_window_mask(height: int, width: int, window: int, shift: int,
                        device: torch.device | None = None) -> Tensor:
    """Swin's SW-MSA mask (Liu et al., ICCV 2021, §3.2): (nW, w², w²), 0 between tokens of the
    same region of the cyclically shifted map, -100 between tokens of different regions."""
    region = torch.zeros(1, height, width, 1, device=device)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, (hs, ws) in enumerate((hs, ws) for hs in cuts for ws in cuts):
        region[:, hs, ws] = i
    ids = window_partition(region, (window, window)).flatten(1)  # (nW, w²)
    return torch.zeros(ids.shape + ids.shape[-1:], device=device).masked_fill(
        ids[:, None, :] != ids[:, :, None], -100.0)


def linear_attention(q: Tensor, k: Tensor, v: Tensor, eps: float = 1e-6) -> Tensor:
    """Linear attention of Katharopoulos et al. ("Transformers are RNNs", ICML 2020, eq. 6)
    with φ(x) = elu(x) + 1, per head:

        out_i = φ(q_i)ᵀ Σ_j φ(k_j) v_jᵀ / (φ(q_i)ᵀ Σ_j φ(k_j) + eps)

    Args:
        q: (N, L, H, d); k, v: (N, S, H, d).

    Returns:
        (N, L, H, d). Values are divided by S before the sum and the output multiplied back,
        as released (a guard against fp16 overflow; exact up to rounding).
    """
    q, k = F.elu(q) + 1, F.elu(k) + 1
    S = v.shape[1]
    kv = torch.einsum('nshd,nshe->nhde', k, v / S)  # Σ_j φ(k_j) v_jᵀ
    norm = torch.einsum('nlhd,nhd->nlh', q, k.sum(1)) + eps  # φ(q_i)ᵀ Σ_j φ(k_j)
    return torch.einsum('nlhd,nhde->nlhe', q, kv) / norm[..., None] * S


class GuidedWindowAttention(nn.Module):
    """Swin W-MSA whose queries and keys also see the guidance: q, k = Linear([LN x; LN g]),
    v = Linear(LN x), no relative-position bias (model.py ``WindowAttention``)."""

    def __init__(self, dim: int, guidance_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim + guidance_dim, dim)
        self.k = nn.Linear(dim + guidance_dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, guidance: Tensor, mask: Tensor | None) -> Tensor:
        """x (N, nW, L, C), guidance (N, nW, L, G), mask (nW, L, L) or None -> (N, nW, L, C)."""
        xg = torch.cat([x, guidance], dim=-1)
        q, k, v = (t.unflatten(-1, (self.num_heads, -1)).transpose(-3, -2)
                   for t in (self.q(xg), self.k(xg), self.v(x)))  # (N, nW, H, L, d)
        if mask is not None:
            mask = mask[:, None].to(q.dtype)  # (nW, 1, L, L), added to q kᵀ / sqrt(d)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(-3, -2).flatten(-2))


class GuidedSwinBlock(nn.Module):
    """Pre-LN Swin block (window ``window``, cyclic shift ``shift``) with guided attention."""

    def __init__(self, dim: int, guidance_dim: int, num_heads: int, window: int,
                 shift: int) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = GuidedWindowAttention(dim, guidance_dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden_features=4 * dim)

    def forward(self, x: Tensor, guidance: Tensor) -> Tensor:
        """x (N, H, W, C), LN'd guidance (N, H, W, G) -> (N, H, W, C)."""
        N, H, W, C = x.shape
        window, shift = self.window, self.shift
        if min(H, W) <= window:  # as released: one window, no shift
            window, shift = min(H, W), 0
        if H % window or W % window:
            raise ValueError(f'GuidedSwinBlock: a {H}x{W} cost grid does not split into '
                             f'{window}x{window} windows; set window_size to a divisor')
        y = torch.cat([self.norm1(x), guidance], dim=-1)
        if shift:
            y = torch.roll(y, (-shift, -shift), dims=(1, 2))
        windows = window_partition(y, (window, window)).unflatten(0, (N, -1)).flatten(2, 3)
        mask = shifted_window_mask(H, W, window, shift, x.device) if shift else None
        out = self.attn(windows[..., :C], windows[..., C:], mask)  # (N, nW, w², C)
        out = window_reverse(out.flatten(0, 1).unflatten(1, (window, window)), (window, window),
                             H, W)
        if shift:
            out = torch.roll(out, (shift, shift), dims=(1, 2))
        x = x + out
        return x + self.mlp(self.norm2(x))


@MODELS.register_module()
class SpatialAggregation(nn.Module):
    """Eq. 2: each class's cost map through a W-MSA and a SW-MSA Swin block, guided by the
    image (model.py ``SwinTransformerBlockWrapper``).

    Args:
        dim: cost embedding channels.
        guidance_dim: appearance guidance channels (LayerNorm'd here).
        num_heads: attention heads.
        window_size: window side (released 12 on the 24x24 grid); the second block shifts by
            half of it.
    """

    def __init__(self, dim: int = 128, guidance_dim: int = 128, num_heads: int = 4,
                 window_size: int = 12) -> None:
        super().__init__()
        self.block_1 = GuidedSwinBlock(dim, guidance_dim, num_heads, window_size, 0)
        self.block_2 = GuidedSwinBlock(dim, guidance_dim, num_heads, window_size,
                                       window_size // 2)
        self.guidance_norm = nn.LayerNorm(guidance_dim)

    def forward(self, x: Tensor, guidance: Tensor) -> Tensor:
        """x (B, C, T, H, W), guidance (B, G, H, W) -> (B, C, T, H, W)."""
        B, C, T, H, W = x.shape
        guidance = self.guidance_norm(guidance.permute(0, 2, 3, 1))  # (B, H, W, G)
        guidance = guidance.repeat_interleave(T, dim=0)  # (B*T, H, W, G)
        x = x.permute(0, 2, 3, 4, 1).reshape(B * T, H, W, C)
        x = self.block_2(self.block_1(x, guidance), guidance)
        return x.reshape(B, T, H, W, C).permute(0, 4, 1, 2, 3)


@MODELS.register_module()
class ClassAggregation(nn.Module):
    """Eq. 3: at each (pooled) position, linear attention over the class axis, guided by the
    text; no positional embedding, so it is equivariant to the class order
    (model.py ``ClassTransformerLayer``).

    The class axis is padded to ``pad_len`` with a learnable token and learnable guidance
    (padding takes part as keys and values, so outputs depend on the class count, never on
    the order). Positions are average-pooled by ``pool_size`` in training and ``test_pool_size``
    otherwise, and the update is upsampled back (bilinear, align_corners) as a residual.

    Args:
        dim: cost embedding channels.
        guidance_dim: text guidance channels.
        num_heads: attention heads.
        pool_size: training pooling (released ``POOLING_SIZES`` [2, 2]).
        test_pool_size: pooling in eval mode (released eval.sh: [1, 1]).
        pad_len: padded class count (0: no padding).
    """

    def __init__(self, dim: int = 128, guidance_dim: int = 128, num_heads: int = 4,
                 pool_size: Sequence[int] = (2, 2), test_pool_size: Sequence[int] = (1, 1),
                 pad_len: int = 256) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.pool_size, self.test_pool_size = tuple(pool_size), tuple(test_pool_size)
        self.pad_len = pad_len
        self.norm1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim + guidance_dim, dim)
        self.k = nn.Linear(dim + guidance_dim, dim)
        self.v = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, dim))
        self.padding_tokens = nn.Parameter(torch.zeros(1, 1, dim)) if pad_len else None
        self.padding_guidance = nn.Parameter(torch.zeros(1, 1, guidance_dim)) if pad_len else None

    def forward(self, x: Tensor, guidance: Tensor) -> Tensor:
        """x (B, C, T, H, W), text guidance (B, T, G) -> (B, C, T, H, W)."""
        B, C, T, H, W = x.shape
        pool = self.pool_size if self.training else self.test_pool_size
        y = F.avg_pool2d(x.flatten(1, 2), pool) if pool != (1, 1) else x.flatten(1, 2)
        h, w = y.shape[-2:]
        y = y.unflatten(1, (C, T)).permute(0, 3, 4, 2, 1).reshape(B * h * w, T, C)
        guidance = guidance.repeat_interleave(h * w, dim=0)  # (B*h*w, T, G)
        if self.padding_tokens is not None and T < self.pad_len:
            pad = (B * h * w, self.pad_len - T, -1)
            y = torch.cat([y, self.padding_tokens.expand(*pad)], dim=1)
            guidance = torch.cat([guidance, self.padding_guidance.expand(*pad)], dim=1)
        yn = self.norm1(y)
        yg = torch.cat([yn, guidance], -1)
        q, k, v = (t.unflatten(-1, (self.num_heads, -1)) for t in (self.q(yg), self.k(yg),
                                                                    self.v(yn)))
        y = y + linear_attention(q, k, v).flatten(-2)
        y = y + self.mlp(self.norm2(y))
        y = y[:, :T].reshape(B, h, w, T, C).permute(0, 3, 4, 1, 2).flatten(0, 1)  # (B*T, C, h, w)
        y = F.interpolate(y, size=(H, W), mode='bilinear', align_corners=True)
        return x + y.unflatten(0, (B, T)).transpose(1, 2)


class AggregationLayer(nn.Module):
    """One spatial then one class aggregation (model.py ``AggregatorLayer``)."""

    def __init__(self, spatial: SpatialAggregation, classwise: ClassAggregation) -> None:
        super().__init__()
        self.spatial, self.classwise = spatial, classwise

    def forward(self, x: Tensor, guidance: Tensor, text_guidance: Tensor) -> Tensor:
        return self.classwise(self.spatial(x, guidance), text_guidance)


class UpBlock(nn.Module):
    """ConvT(2x2, s2) to ``in - guidance`` channels, concat the guidance, then (Conv3x3, GN,
    ReLU) x 2 (model.py ``Up``/``DoubleConv``; GN with out/16 groups)."""

    def __init__(self, in_channels: int, out_channels: int, guidance_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels - guidance_channels, 2, stride=2)
        gn = dict(type='GN', num_groups=out_channels // 16)
        self.conv = nn.Sequential(
            ConvModule(in_channels, out_channels, 3, padding=1, bias=False, norm_cfg=gn),
            ConvModule(out_channels, out_channels, 3, padding=1, bias=False, norm_cfg=gn))

    def forward(self, x: Tensor, guidance: Tensor) -> Tensor:
        """x (B*T, C, h, w), guidance (B, G, 2h, 2w) -> (B*T, out, 2h, 2w)."""
        guidance = guidance.repeat_interleave(x.shape[0] // guidance.shape[0], dim=0)
        return self.conv(torch.cat([self.up(x), guidance], dim=1))


def conv_relu(in_channels: int, out_channels: int) -> ConvModule:
    """Conv3x3 (with bias) + ReLU, the released guidance projections."""
    return ConvModule(in_channels, out_channels, 3, padding=1)


@MODELS.register_module()
class CATSegHead(OpenVocabHead):
    """CAT-Seg's aggregator and upsampling decoder as an :class:`OpenVocabHead`.

    The backbone gives F (``dense.feats``, (B, D, h, w)) and the maps after two earlier blocks
    (``dense.levels``, (B, W, h, w) each: ``CLIPViT(out_indices=(3, 7))`` for ViT-B).
    :meth:`predict` returns sigmoid probabilities at the window size (``scores='probs'``), so
    that windows are averaged as probabilities, as the released sliding window does.

    Args:
        embed_dim: D, CLIP's joint-space width (512 for ViT-B/16, 768 for ViT-L/14).
        guidance_channels: W, CLIP's token width at the guidance taps (768 / 1024).
        num_prompts: P, prompts per class (the text's second axis).
        hidden_dim: cost embedding channels.
        num_layers: aggregation layers (spatial + class).
        num_heads: heads of both attentions.
        window_size: Swin window on the cost grid.
        pool_size, test_pool_size: class-aggregation pooling in training / eval.
        pad_len: classes per image: fewer are padded with a learnable token, more are pruned
            to the top ``pad_len`` by the cost volume.
        appearance_guidance_dim, text_guidance_dim: projected guidance channels.
        decoder_dims: channels of the two upsampling blocks.
        decoder_guidance_dims: channels of the two upsampled CLIP taps (ConvT outputs).
        decoder_guidance_proj_dims: their projected channels.
        ignore_index: label of ignored pixels.
        ignore_as_negative: released loss: ignored pixels get an all-zero target and stay in
            the mean (they push every class down). False leaves them out of the loss.
        loss_weight: weight of the BCE loss.
    """

    scores = 'probs'

    def __init__(self, embed_dim: int = 512, guidance_channels: int = 768, num_prompts: int = 1,
                 hidden_dim: int = 128, num_layers: int = 2, num_heads: int = 4,
                 window_size: int = 12, pool_size: Sequence[int] = (2, 2),
                 test_pool_size: Sequence[int] = (1, 1), pad_len: int = 256,
                 appearance_guidance_dim: int = 128, text_guidance_dim: int = 128,
                 decoder_dims: Sequence[int] = (64, 32),
                 decoder_guidance_dims: Sequence[int] = (256, 128),
                 decoder_guidance_proj_dims: Sequence[int] = (32, 16),
                 ignore_index: int = 255, ignore_as_negative: bool = True,
                 loss_weight: float = 1.0, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.ignore_index = ignore_index
        self.ignore_as_negative = ignore_as_negative
        self.loss_weight = loss_weight
        self.cost_volume = CostVolume(max_classes=pad_len or None)
        self.embed = nn.Conv2d(num_prompts, hidden_dim, 7, padding=3)
        self.upsample = nn.ModuleList([  # released CATSeg.upsample1 / upsample2
            nn.ConvTranspose2d(guidance_channels, decoder_guidance_dims[0], 2, stride=2),
            nn.ConvTranspose2d(guidance_channels, decoder_guidance_dims[1], 4, stride=4)])
        self.appearance_guidance = conv_relu(embed_dim, appearance_guidance_dim)
        self.text_guidance = nn.Sequential(nn.Linear(embed_dim, text_guidance_dim), nn.ReLU())
        self.decoder_guidance = nn.ModuleList(
            conv_relu(c, p) for c, p in zip(decoder_guidance_dims, decoder_guidance_proj_dims))
        self.layers = nn.ModuleList(AggregationLayer(
            SpatialAggregation(hidden_dim, appearance_guidance_dim, num_heads, window_size),
            ClassAggregation(hidden_dim, text_guidance_dim, num_heads, pool_size,
                             test_pool_size, pad_len)) for _ in range(num_layers))
        self.decoder = nn.ModuleList([
            UpBlock(hidden_dim, decoder_dims[0], decoder_guidance_proj_dims[0]),
            UpBlock(decoder_dims[0], decoder_dims[1], decoder_guidance_proj_dims[1])])
        self.head = nn.Conv2d(decoder_dims[1], 1, 3, padding=1)

    def forward(self, dense: DenseOutput, text: Tensor) -> Tensor:
        """(B, T, 4h, 4w) logits for the (T, P, D) class embeddings ``text``."""
        if len(dense.levels) != 2:
            raise ValueError(f'CATSegHead: needs the maps of two earlier CLIP blocks in '
                             f'dense.levels, got {len(dense.levels)}; build the backbone with '
                             'out_indices=(3, 7) (ViT-B) or (7, 15) (ViT-L)')
        feats = dense.feats
        B, T = feats.shape[0], text.shape[0]
        cost, text, kept = self.cost_volume(feats, text)  # (B, P, T', h, w), (B, T', P, D)
        x = self.embed(cost.transpose(1, 2).flatten(0, 1))  # (B*T', C, h, w)
        x = x.unflatten(0, (B, -1)).transpose(1, 2)  # (B, C, T', h, w)
        guidance = self.appearance_guidance(feats)
        text_guidance = self.text_guidance(F.normalize(text.mean(2), dim=-1))  # (B, T', G)
        decoder_guidance = [proj(up(level)) for proj, up, level
                            in zip(self.decoder_guidance, self.upsample, dense.levels)]
        for layer in self.layers:
            x = layer(x, guidance, text_guidance)
        x = x.transpose(1, 2).flatten(0, 1)  # (B*T', C, h, w)
        for block, g in zip(self.decoder, decoder_guidance):
            x = block(x, g)
        logits = self.head(x).unflatten(0, (B, -1)).squeeze(2)  # (B, T', 4h, 4w)
        return self.cost_volume.restore(logits, kept, T)

    def predict(self, dense: DenseOutput, text: Tensor) -> Tensor:
        """Sigmoid of the logits upsampled to the input window (released order: upsample,
        then sigmoid)."""
        logits = F.interpolate(self(dense, text), size=dense.images.shape[-2:],
                               mode='bilinear', align_corners=False)
        return logits.sigmoid()

    def loss(self, dense: DenseOutput, text: Tensor,
             data_samples: Sequence[SegDataSample]) -> dict[str, Tensor]:
        """``loss_bce``: BCE with logits (upsampled to the labels) against one-hot targets."""
        labels = torch.stack([s.gt_sem_seg.data[0] for s in data_samples])  # (B, H, W)
        logits = F.interpolate(self(dense, text), size=labels.shape[-2:], mode='bilinear',
                               align_corners=False)
        valid = labels != self.ignore_index
        target = F.one_hot(torch.where(valid, labels, 0), logits.shape[1])  # (B, H, W, T)
        target = (target * valid[..., None]).permute(0, 3, 1, 2).to(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
        if self.ignore_as_negative:
            loss = loss.mean()
        else:
            loss = (loss * valid[:, None]).sum() / (valid.sum() * logits.shape[1]).clamp(min=1)
        with torch.no_grad():
            acc = (logits.argmax(1) == labels)[valid].float().mean() * 100
        return dict(loss_bce=self.loss_weight * loss,
                    acc_seg=torch.nan_to_num(acc))
