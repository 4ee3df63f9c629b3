"""ResCLIP: "ResCLIP: Residual Attention for Training-free Dense Vision-language Inference",
Yang, Deng, Li, Duan, CVPR 2025.

arXiv: https://arxiv.org/abs/2411.15851 — code: yvhangyang/ResCLIP@0e085f7 (``clip/model.py``
``VisionTransformer.forward``, ``custom_attn``, ``create_logit_temp``, ``create_patch_matrix``,
``check_path``, ``generate_attention_sfr``; ``resclip_segmentor.py``; ``configs/``).

Two residual terms mixed into the last block's attention of any method whose map is a sum of
softmaxes, A = Σ_t softmax(S_t + Ω_t) (:meth:`DenseAttention.score_terms`; NACLIP's k-k + Ω in
the paper, SCLIP's, ClearCLIP's or CLIP's own as ResCLIP's ``attn_strategy`` allows)::

    RCS (residual cross-correlation):  R = mean_{i in 5..8} softmax(s·q_i k_iᵀ)   (trunk blocks)
    SFR (semantic feedback):           F = feedback mask of a first-pass prediction, max 1
    A = τ_r · [(1 − λ_r) · Σ_t softmax(τ_s·((1 − λ_s)·S_t + λ_s·F) + Ω_t) + λ_r · R]

RCS is :class:`ResCLIPAttention`'s ``rcs_*`` settings; SFR is two passes through it: the
segmentor's window logits (with RCS) are the first pass, and
:class:`SemanticFeedbackRefiner` (a patch refiner) turns them into F (upsampled, PAMR, softmax,
AdaThr at ``temp_thd``, the mode label of each patch; same-label pairs, decayed where the
straight path leaves the label, Gaussian-blurred along rows) and reruns the last block with it.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from denseclip.models.refiner_protocols import PatchRefiner
from denseclip.registry import MODELS

from .base import (NUM_PREFIX_TOKENS, DenseAttention, Grid, block_qkv, require_score_terms,
                   scaled_scores)


def rcs_map(blocks: nn.ModuleList, tokens: list[Tensor], first: int, last: int) -> Tensor:
    """R of RCS: the mean of the trunk blocks' own attention maps softmax(s·q kᵀ), blocks
    ``first``..``last`` - 1 (``attn_map[5:9]``), each (B, nh, T, T)."""
    maps = [scaled_scores(*block_qkv(blocks[i], tokens[i])[:2]).softmax(-1)
            for i in range(first, last)]  # tokens[i] enters block i
    return torch.stack(maps).mean(0)


def patch_labels(probs: Tensor, patch_size: int, temp_thd: float) -> Tensor:
    """``create_patch_matrix``: each pixel's argmax query, query 0 where its probability is
    below ``temp_thd`` (AdaThr), then each patch's most frequent label (``torch.mode``).

    Args:
        probs: (B, Q, H, W) first-pass probabilities at the window's size.

    Returns:
        (B, H // p, W // p) int64 query indices.
    """
    conf, labels = probs.max(1)  # (B, H, W)
    labels[conf < temp_thd] = 0
    patches = labels.unfold(1, patch_size, patch_size).unfold(2, patch_size, patch_size)
    return patches.flatten(3).mode(-1).values  # (B, h, w)


def straight_paths(labels: Tensor) -> tuple[Tensor, Tensor]:
    """``check_path`` for every pair of patches: does the straight path from i to j keep i's
    label? Also the pairs' Chebyshev distances.

    As released: the path is sampled at M + 1 evenly spaced points, M the largest distance in
    the grid, rounded half to even, and only the first d_ij + 1 samples are checked, so a pair
    closer than M checks the d_ij / M of the segment nearest i.

    Args:
        labels: (B, h, w) int64.

    Returns:
        valid (B, N, N) bool and steps (N, N) int64, N = h*w row-major.
    """
    B, h, w = labels.shape
    rows, cols = torch.meshgrid(torch.arange(h, device=labels.device),
                                torch.arange(w, device=labels.device), indexing='ij')
    coords = torch.stack([rows.flatten(), cols.flatten()], 1)  # (N, 2)
    N = coords.shape[0]
    start = coords[:, None].expand(N, N, 2).reshape(-1, 2)  # (N*N, 2): pair (i, j) -> i
    end = coords[None].expand(N, N, 2).reshape(-1, 2)
    steps = (end - start).abs().max(1).values  # (N*N,)
    max_steps = int(steps.max())
    flat = labels.flatten(1)  # (B, N)
    own = flat.repeat_interleave(N, dim=1)  # (B, N*N): label of i
    valid = torch.ones_like(own, dtype=torch.bool)
    t = torch.linspace(0, 1, max_steps + 1, device=labels.device)
    for s in range(1, max_steps + 1):  # sample 0 is i itself
        point = (start * (1 - t[s]) + end * t[s]).round().long()  # (N*N, 2)
        same = flat[:, point[:, 0] * w + point[:, 1]] == own
        valid &= same | (s > steps)
    return valid.view(B, N, N), steps.view(N, N)


def feedback_mask(labels: Tensor, gaussian_std: float = 5.0, delete_same_entity: bool = True,
                  num_prefix_tokens: int = NUM_PREFIX_TOKENS) -> Tensor:
    """F of SFR (``generate_attention_sfr``, then ``custom_attn``'s division by its max).

    F_ij = 1 where patches i and j share a label (and on the diagonal); with
    ``delete_same_entity``, a pair whose straight path leaves i's label (:func:`straight_paths`)
    is decayed by exp(−d_ij / M). Each row is then blurred along the flattened index j by a 1-D
    Gaussian (σ = ``gaussian_std``, zero padding), row-normalised, and F divided by its maximum.
    The prefix ([CLS]) rows and columns are 0.

    Args:
        labels: (B, h, w) int64 patch labels (:func:`patch_labels`).

    Returns:
        (B, P+N, P+N) float32.
    """
    B, h, w = labels.shape
    N = h * w
    flat = labels.flatten(1)
    mask = (flat[:, :, None] == flat[:, None, :]).float()  # (B, N, N), diagonal 1
    if delete_same_entity and N > 1:
        valid, steps = straight_paths(labels)
        decay = torch.exp(-steps / steps.max()).float()
        mask = torch.where(valid, mask, mask * decay)
    size = min(N, int(6 * gaussian_std + 1))
    size += 1 - size % 2  # odd
    x = torch.arange(size, device=labels.device) - size // 2
    kernel = torch.exp(-x ** 2 / (2 * gaussian_std ** 2))
    kernel = (kernel / kernel.sum()).float()
    blurred = F.conv1d(mask.view(B * N, 1, N), kernel.view(1, 1, -1), padding=size // 2)
    blurred = F.relu(blurred.view(B, N, N))
    blurred = blurred / (blurred.sum(-1, keepdim=True) + 1e-8)
    out = F.pad(blurred, (num_prefix_tokens, 0, num_prefix_tokens, 0))  # (B, P+N, P+N)
    return out / out.amax(dim=(1, 2), keepdim=True)


@MODELS.register_module()
class ResCLIPAttention(DenseAttention):
    """A dense attention with ResCLIP's RCS and SFR terms mixed into its map (module docstring).

    The residual and FFN are the wrapped attention's (NACLIP's ``'reduced'`` block is ResCLIP's
    ``arch='wo_resi'``).

    Args:
        attention: config of the wrapped :class:`DenseAttention`; it must implement
            :meth:`~DenseAttention.score_terms` (Vanilla, SCLIP, ClearCLIP, NACLIP).
        rcs_blocks: (first, last) trunk blocks averaged by RCS, ``last`` exclusive (``(5, 9)``:
            the 6th-9th blocks, ``attn_map[5:9]``).
        rcs_weights: (τ_r, λ_r) (``attn_rcs_weights``); None switches RCS off (``use_rcs``).
        sfr_weights: (τ_s, λ_s) (``attn_sfr_weights``), used when a feedback mask is given
            (:class:`SemanticFeedbackRefiner`).
    """

    # RCS reads blocks 5-8 without the grid (no RoPE) and SFR's mask assumes one [CLS].
    supported_families = ('openclip',)

    def __init__(self, *, attention: dict | DenseAttention,
                 rcs_blocks: tuple[int, int] = (5, 9),
                 rcs_weights: tuple[float, float] | None = (2.0, 0.3),
                 sfr_weights: tuple[float, float] = (2.1, 0.7)) -> None:
        inner = MODELS.build(attention) if isinstance(attention, dict) else attention
        super().__init__(residual=inner.residual, ffn=inner.ffn)
        require_score_terms(inner, 'ResCLIPAttention')
        if not 0 <= rcs_blocks[0] < rcs_blocks[1]:
            raise ValueError(f'ResCLIPAttention: rcs_blocks={tuple(rcs_blocks)}; expected '
                             '(first, last) with 0 <= first < last')
        self.attention = inner
        self.rcs_blocks = tuple(rcs_blocks)
        self.rcs_weights = None if rcs_weights is None else tuple(rcs_weights)
        self.sfr_weights = tuple(sfr_weights)

    def attention_map(self, q: Tensor, k: Tensor, grid: Grid, rcs: Tensor | None = None,
                      feedback: Tensor | None = None) -> Tensor:
        """The mixed map A (module docstring), (B, nh, T, T).

        Args:
            q, k: (B, nh, T, hd).
            rcs: R (B, nh, T, T) or None.
            feedback: F (B, T, T) or None.
        """
        attn = 0
        for scores, prior in self.attention.score_terms(q, k, grid):
            if feedback is not None:
                tau, lam = self.sfr_weights
                scores = tau * ((1 - lam) * scores + lam * feedback[:, None].to(scores.dtype))
            if prior is not None:
                scores = scores + prior
            attn = attn + scores.softmax(-1)
        if rcs is not None:
            tau, lam = self.rcs_weights
            attn = tau * ((1 - lam) * attn + lam * rcs.to(attn.dtype))
        return attn

    def attend(self, q: Tensor, k: Tensor, v: Tensor, grid: Grid) -> Tensor:
        """The wrapped attention's map alone (no trunk maps or feedback reach a bare block)."""
        return self.attention_map(q, k, grid) @ v

    def dense_forward(self, blocks: nn.ModuleList, tokens: list[Tensor], grid: Grid,
                      images: Tensor, feedback: Tensor | None = None
                      ) -> tuple[Tensor, Grid, Tensor]:
        """The last block with RCS, and with SFR when ``feedback`` (B, T, T) is given."""
        first, last = self.rcs_blocks
        if last > len(blocks) - 1:
            raise ValueError(f'ResCLIPAttention: rcs_blocks={self.rcs_blocks} reaches block '
                             f'{last - 1}; this tower has blocks 0..{len(blocks) - 2} before '
                             'the last (ViT-B/16: (5, 9))')
        rcs = None if self.rcs_weights is None else rcs_map(blocks, tokens, first, last)
        block, x = blocks[-1], tokens[-1]
        q, k, v = block_qkv(block, x)
        out = self.finish(block, x, self.attention_map(q, k, grid, rcs, feedback) @ v)
        return out[:, NUM_PREFIX_TOKENS:], grid, out[:, 0]

    def extra_repr(self) -> str:
        return (f'rcs_blocks={self.rcs_blocks}, rcs_weights={self.rcs_weights}, '
                f'sfr_weights={self.sfr_weights}')


@MODELS.register_module()
class SemanticFeedbackRefiner(PatchRefiner):
    """SFR: from the window's first-pass logits, the feedback mask F, and the window's logits
    of a second pass through the backbone's :class:`ResCLIPAttention` with F.

    First pass (``create_logit_temp``): the patch cosines upsampled (bilinear) to the window,
    PAMR on the window's pixels, softmax(logit_scale · ·) over queries; then
    :func:`patch_labels` and :func:`feedback_mask`. The second pass's features go straight to
    the cosine with the classifier (no feature refiner). Deviation: a window whose side is not
    a multiple of the patch (VOC's whole images) reaches the backbone, and so this pass, cut to
    whole patches; the release upsamples over the uncut window and runs PAMR on its extra
    (< 1 patch) pixels too. Windows of whole patches (the 224 crops) are exact.

    Args:
        temp_thd: AdaThr, the probability below which a pixel takes query 0 (per dataset).
        delete_same_entity: decay same-label pairs not joined by a straight same-label path.
        gaussian_std: σ of the row blur (ResCLIP reuses NACLIP's ``gaussian_std``, 5).
        logit_scale: the first pass's softmax temperature (the segmentor's, 40).
        pamr_steps, pamr_dilations: the first pass's PAMR (10 steps, dilations (8, 16)).
    """

    def __init__(self, *, temp_thd: float, delete_same_entity: bool = True,
                 gaussian_std: float = 5.0, logit_scale: float = 40.0, pamr_steps: int = 10,
                 pamr_dilations: tuple[int, ...] = (8, 16)) -> None:
        super().__init__()
        if gaussian_std <= 0:
            raise ValueError(f'SemanticFeedbackRefiner: gaussian_std={gaussian_std}; expected > 0')
        self.temp_thd = temp_thd
        self.delete_same_entity = delete_same_entity
        self.gaussian_std = gaussian_std
        self.logit_scale = logit_scale
        self.pamr_steps = pamr_steps
        self.pamr_dilations = tuple(pamr_dilations)
        self.text: Tensor | None = None

    def set_classifier(self, classifier) -> None:
        self.text = classifier.embeddings

    def first_pass_labels(self, logits: Tensor, images: Tensor, patch_size: int) -> Tensor:
        """(b, Q, h, w) patch cosines -> (b, h, w) patch labels."""
        # here, not at the top: denseclip.models.refiners imports the backbones, which import
        # the dense methods
        from denseclip.models.refiners.pamr import pamr
        logits = F.interpolate(logits, size=images.shape[-2:], mode='bilinear',
                               align_corners=False)
        logits = pamr(images.to(logits.dtype), logits, self.pamr_dilations, self.pamr_steps)
        probs = torch.softmax(self.logit_scale * logits, dim=1)
        return patch_labels(probs, patch_size, self.temp_thd)

    def forward(self, logits: Tensor, dense, backbone: nn.Module) -> Tensor:
        attention = backbone.dense
        if not isinstance(attention, ResCLIPAttention):
            raise TypeError(f'SemanticFeedbackRefiner needs the backbone dense attention to be '
                            f'ResCLIPAttention, got {type(attention).__name__}')
        if self.text is None:
            raise RuntimeError('SemanticFeedbackRefiner: no classifier; the segmentor sets it '
                               'with the vocabulary')
        labels = self.first_pass_labels(logits, dense.images.float(), backbone.patch_size)
        feedback = feedback_mask(labels, self.gaussian_std, self.delete_same_entity)
        tokens = dense.tokens
        device = tokens[-1].device.type
        low = tokens[-1].dtype != torch.float32  # the encoder ran under autocast: so does this
        with torch.autocast(device, dtype=tokens[-1].dtype) if low else nullcontext():
            patches, grid, _ = attention.dense_forward(backbone.blocks, tokens, dense.grid,
                                                       dense.images, feedback=feedback)
            feats = backbone.project(patches, grid)
        feats = F.normalize(feats.float(), dim=1)
        return torch.einsum('behw,qe->bqhw', feats, self.text.float()).contiguous()

    def extra_repr(self) -> str:
        return (f'temp_thd={self.temp_thd}, delete_same_entity={self.delete_same_entity}, '
                f'gaussian_std={self.gaussian_std}, logit_scale={self.logit_scale}, '
                f'pamr_steps={self.pamr_steps}, pamr_dilations={self.pamr_dilations}')


__all__ = ['ResCLIPAttention', 'SemanticFeedbackRefiner', 'rcs_map', 'patch_labels',
           'straight_paths', 'feedback_mask']
