"""CorrCLIP: "CorrCLIP: Reconstructing Patch Correlations in CLIP for Open-Vocabulary Semantic
Segmentation", Zhang et al., ICCV 2025 (oral).

arXiv: https://arxiv.org/abs/2411.10086 — code: zdk258/CorrCLIP@103bc18, ``CorrCLIPv1/``:
``corrclip_segmentor.py`` (DINO (q+k), slide windows, masks, map correction) and
``open_clip/transformer.py`` ``VisionTransformer.forward(x, dino_feats, feat_shape, masks)``.

With f_i the L2-normalised (q+k) of DINO's last block at patch i (DINO grid I x J, H/8 x W/8
for ViT-B/8), r_i its region (0 = no mask covers it) and x^(l) CLIP's tokens entering block l::

    merge:  regions whose mean f are within ε = 0.2 of each other in max(S_R) − S_R join
            (DBSCAN, min_samples = 1: the connected components of that graph)
    S_ij  = f_i · f_j                                           (value reconstruction)
    Ω_ij  = [r_i = r_j ≠ 0] ∨ ([r_i = 0 ∨ r_j = 0] ∧ S_ij > mean(S))   (scope reconstruction)
    A     = softmax_j(S_ij / τ  where Ω_ij, else −∞)                      τ = 1/4 (TAU = 4)
    main     = o(A · up(v(LN1 x^(L-1))))       up: CLIP grid -> DINO grid, bilinear
    spatial  = o(A · up(v(LN1 mean_{l = L-1-n .. L-2} x^(l))))   n = 5: blocks 5-9's outputs
    semantic = MCT of r_i: a copy of [CLS] per region (the unsegmented one included) taken
               through every block, attending to [CLS] and its region's patches only (mask
               class tokens), regions at the CLIP grid (nearest), each DINO patch its cell's
    F     = (LN_post(main) + α·LN_post(spatial) + β·LN_post(semantic)) · P     α = 1, β = 0.5

There is no residual or FFN around A, no CLIP q/k and no [CLS] in the output; features come
out at DINO's grid. After the slide windows are merged and the argmax taken, each region of the
image's (unmerged) map takes the mode of its labels (map correction, :func:`map_correction`).

The pieces: :func:`corr_scope`, :func:`merge_regions` and :func:`corr_attention` (the
mask-restricted correlation, usable under any attention through :class:`CorrScopeAttention`),
:class:`CorrCLIPAttention` (the last block's three branches, a (3, B, N', D) branch stack that
``CLIPViT.project`` weights after LN_post), and :class:`CorrCLIPSegmentor` (masks per image,
per-window masks to the attention, map correction).

Deviations from the released code:

* Region 0 is the unsegmented region. The released code takes the smallest label present in
  a window as the unsegmented one (``generate_mask``: "the minimum denotes the union of
  unsegmented regions"), so in a window every pixel of which some mask covers, its smallest
  mask is treated as unsegmented (and merging needs three labels there, two regions here).
* Padded pixels (windows zero-padded to a multiple of 56) form their own region; the released
  code labels them 10000, which is also the label DBSCAN's cluster 0 is given (cluster + 10000)
  and so merges them with it.
* Masks come from the pipeline-resized network input, un-normalised to uint8, not from the
  image file at its original size; SAM resizes either to 1024 on its long side. The map
  correction's masks are the same map resized (nearest) to the original size.
* The mask class tokens are built per window of a batch; the released code handles one window
  at a time (``masks[0]``), the same for a batch of one.
* The spatial range ``n`` is a setting (released: 5 / 12 / 28 for 12 / 24 / 32 blocks, else
  ``L - 4``, which is empty, and fails, below 5 blocks).
* The released code runs CLIP and DINO in fp16 on CUDA; ours runs the segmentor's ``dtype``.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

# (importing proxy also registers DINOProxy and SAMProxy, which proxy=dict(type=...) names)
from denseclip.models.backbones.proxy import from_clip_normalisation
# Registers the mask generators, which ``mask_generator=dict(type=...)`` names.
from denseclip.models import masks as _masks  # noqa: F401
from denseclip.models.segmentors.open_vocab import OpenVocabSegmentor
from denseclip.registry import MODELS

from .base import (NUM_PREFIX_TOKENS, DenseAttention, Grid, block_qkv, merge_heads,
                   require_score_terms)

UNSEGMENTED = 0  # region label of pixels no mask covers
PADDING = -1  # region label of the windows' zero padding (its own region)

# The released spatial-branch depth per tower depth (transformer.py NUM_SPATIAL).
RELEASED_NUM_SPATIAL = {12: 5, 24: 12, 32: 28}


# ----------------------------------------------------------------------------- the correlation
def corr_scope(regions: Tensor, sim: Tensor) -> Tensor:
    """Ω: which patch pairs may interact (scope reconstruction).

    Ω_ij = [r_i = r_j ≠ 0] ∨ ([r_i = 0 ∨ r_j = 0] ∧ S_ij > mean(S)), the mean over the image's
    whole N x N map. The diagonal is always kept (deviation only where a row would be empty,
    S_ii <= mean(S): the released softmax gives NaN there).

    Args:
        regions: (B, N) region labels, 0 = unsegmented.
        sim: (B, N, N) correlation values S.

    Returns:
        (B, N, N) bool.
    """
    unseg = regions == UNSEGMENTED  # (B, N)
    same = (regions[:, :, None] == regions[:, None, :]) & ~unseg[:, :, None]
    either = unseg[:, :, None] | unseg[:, None, :]
    above = sim > sim.mean(dim=(1, 2), keepdim=True)
    eye = torch.eye(regions.shape[1], dtype=torch.bool, device=regions.device)
    return same | (either & above) | eye


def connected_components(adjacency: Tensor) -> Tensor:
    """(R, R) bool symmetric adjacency -> (R,) component index 0..C-1, numbered by first
    member. DBSCAN with ``min_samples=1`` makes every point a core point, so its clusters are
    exactly these components of the ε-graph."""
    R = adjacency.shape[0]
    labels = torch.arange(R, device=adjacency.device)
    adjacency = adjacency | torch.eye(R, dtype=torch.bool, device=adjacency.device)
    while True:  # min-label propagation, at most R rounds
        big = torch.full((R, R), R, device=adjacency.device)
        new = torch.where(adjacency, labels[None, :].expand(R, R), big).amin(1)
        if torch.equal(new, labels):
            break
        labels = new
    return torch.unique(labels, return_inverse=True)[1]


def merge_regions(regions: Tensor, feats: Tensor, eps: float = 0.2) -> Tensor:
    """Mask merging: segmented regions with similar mean features share one label.

    Per image, with m_r the L2-normalised mean of the (L2-normalised) features over region r
    and S_R = m mᵀ, regions within ``eps`` in the distance max(S_R) − S_R are linked and each
    connected component becomes one region (the released DBSCAN(eps, min_samples=1,
    metric='precomputed')). Unsegmented patches keep label 0; merged regions are numbered
    1..C; an image with fewer than two segmented regions is left as it is.

    Args:
        regions: (B, N) labels, 0 = unsegmented.
        feats: (B, N, C) L2-normalised features.

    Returns:
        (B, N) labels.
    """
    out = regions.clone()
    for b in range(regions.shape[0]):
        values, inverse = torch.unique(regions[b], return_inverse=True)
        segmented = values != UNSEGMENTED
        if int(segmented.sum()) < 2:
            continue
        onehot = F.one_hot(inverse, len(values)).to(feats.dtype)  # (N, R)
        means = F.normalize(onehot.T @ feats[b] / onehot.sum(0)[:, None], dim=-1)[segmented]
        sim = means @ means.T
        component = connected_components((sim.max() - sim) <= eps) + 1  # (R_seg,) 1..C
        new = torch.zeros(len(values), dtype=regions.dtype, device=regions.device)
        new[segmented] = component.to(regions.dtype)
        out[b] = new[inverse]
    return out


def corr_attention(feats: Tensor, regions: Tensor, tau: float = 0.25) -> Tensor:
    """A = softmax(S/τ) within Ω (:func:`corr_scope`), S = f fᵀ of L2-normalised ``feats``.

    Args:
        feats: (B, N, C) correlation features (DINO's q + k), normalised here.
        regions: (B, N) region labels (after :func:`merge_regions`), 0 = unsegmented.
        tau: τ (released TAU = 4 multiplies S: τ = 0.25).

    Returns:
        (B, N, N) rows summing to 1.
    """
    f = F.normalize(feats, dim=-1)
    sim = f @ f.transpose(1, 2)
    scope = corr_scope(regions, sim)
    return (sim / tau).masked_fill(~scope, float('-inf')).softmax(-1)


def regions_to_grid(labels: Tensor, grid: Grid) -> Tensor:
    """(B, H, W) pixel labels -> (B, h*w) at a patch grid, nearest (``F.interpolate``'s
    'nearest', as the released code resizes its masks); padding (-1) becomes a label of its
    own, above every other."""
    labels = labels.long()
    fresh = int(labels.max()) + 1 if labels.numel() else 1
    labels = torch.where(labels == PADDING, torch.full_like(labels, fresh), labels)
    out = F.interpolate(labels[:, None].float(), size=tuple(grid), mode='nearest')
    return out.flatten(1).round().long()


def upsample_tokens(x: Tensor, grid: Grid, size: Grid) -> Tensor:
    """(B, N, C) tokens on ``grid`` -> (B, I*J, C) on ``size``, bilinear, align_corners=False
    (the released ``v`` resize)."""
    B, N, C = x.shape
    if tuple(grid) == tuple(size):
        return x
    fmap = x.transpose(1, 2).reshape(B, C, *grid)
    fmap = F.interpolate(fmap, size=tuple(size), mode='bilinear', align_corners=False)
    return fmap.flatten(2).transpose(1, 2)


def nearest_index(src: Grid, dst: Grid, device) -> Tensor:
    """(I*J,) index into a ``src`` grid of each ``dst`` cell, F.interpolate's 'nearest'."""
    idx = torch.arange(src[0] * src[1], device=device, dtype=torch.float32).view(1, 1, *src)
    return F.interpolate(idx, size=tuple(dst), mode='nearest').flatten().round().long()


# ----------------------------------------------------------------------------- masks in
class RegionMasksMixin:
    """How a window batch's region masks reach an attention: the segmentor sets them for the
    duration of one forward pass (:meth:`use_masks`)."""

    _masks: Tensor | None = None

    @contextlib.contextmanager
    def use_masks(self, masks: Tensor) -> Iterator[None]:
        """Region labels (b, H', W') of the windows about to be encoded (0 = unsegmented,
        -1 = padding), at the windows' pixel size before padding or at the padded size."""
        if masks.ndim != 3:
            raise ValueError(f'{type(self).__name__}.use_masks: expected (B, H, W) labels, got '
                             f'{tuple(masks.shape)}')
        previous, self._masks = self._masks, masks
        try:
            yield
        finally:
            self._masks = previous

    def window_masks(self, images: Tensor) -> Tensor:
        """The masks of ``images`` (B, 3, H, W): the labels set by :meth:`use_masks`, padded
        as the segmentor pads windows (centred, label -1) when they are smaller."""
        name = type(self).__name__
        if self._masks is None:
            raise ValueError(f'{name}: no region masks. CorrCLIP restricts attention to mask '
                             'regions: run it under CorrCLIPSegmentor (it generates them), '
                             'or call it inside `with attention.use_masks(labels):` with '
                             '(B, H, W) labels')
        masks = self._masks.to(images.device)
        B, _, H, W = images.shape
        if masks.shape[0] != B:
            raise ValueError(f'{name}: {masks.shape[0]} region masks for {B} images')
        h, w = masks.shape[1:]
        if (h, w) != (H, W):
            if h > H or w > W:
                raise ValueError(f'{name}: region masks {tuple(masks.shape)} larger than the '
                                 f'input {tuple(images.shape)}')
            left, top = (W - w) // 2, (H - h) // 2  # centred_padding
            masks = F.pad(masks, (left, W - w - left, top, H - h - top), value=PADDING)
        return masks


# ----------------------------------------------------------------------------- CorrCLIP
@MODELS.register_module()
class CorrCLIPAttention(RegionMasksMixin, DenseAttention):
    """CorrCLIP's last block (module docstring): DINO-correlation attention within mask
    regions, fused with a mid-layer spatial branch and mask class tokens.

    Its patches are a (3, B, I*J, D) stack (main, spatial, semantic) that
    ``CLIPViT.project`` puts through LN_post one by one and sums with :attr:`branch_weights`.

    Args:
        proxy: config (or module) of the correlation encoder, a :class:`DINOProxy` (its
            ``forward_qk``: the last block's q + k).
        tau: τ, the softmax temperature of the correlations (0.25; released TAU = 4).
        merge_eps: ε of mask merging (0.2; None: no merging).
        alpha: α, the spatial branch's weight (1.0).
        beta: β, the semantic branch's weight (0.5).
        num_spatial: n, the blocks averaged by the spatial branch, the n before the last two
            (None: the released rule, 5 for 12 blocks, 12 for 24, 28 for 32).
    """

    # Its mask class tokens start from [CLS] and its branches fuse after open_clip's ln_post.
    supported_families = ('openclip',)

    def __init__(self, *, proxy: dict | nn.Module, tau: float = 0.25,
                 merge_eps: float | None = 0.2, alpha: float = 1.0, beta: float = 0.5,
                 num_spatial: int | None = None) -> None:
        super().__init__(residual=False, ffn=False)
        self.proxy = MODELS.build(proxy) if isinstance(proxy, dict) else proxy
        if not hasattr(self.proxy, 'forward_qk'):
            raise TypeError(f'CorrCLIPAttention: proxy {type(self.proxy).__name__} has no '
                            "forward_qk (the last block's q + k); use type='DINOProxy'")
        if tau <= 0:
            raise ValueError(f'CorrCLIPAttention: tau={tau}; expected > 0')
        if num_spatial is not None and num_spatial < 1:
            raise ValueError(f'CorrCLIPAttention: num_spatial={num_spatial}; expected >= 1')
        self.tau = tau
        self.merge_eps = merge_eps
        self.alpha = alpha
        self.beta = beta
        self.num_spatial = num_spatial

    @property
    def branch_weights(self) -> tuple[float, float, float]:
        """Weights of the (main, spatial, semantic) branches after LN_post."""
        return (1.0, self.alpha, self.beta)

    def proxy_images(self, images: Tensor) -> Tensor:
        """CLIP-normalised (B, 3, H, W) -> the same pixels in the proxy's normalisation
        (released: ``self.norm(self.unnorm(img))``)."""
        return from_clip_normalisation(images, self.proxy.mean, self.proxy.std)

    def spatial_range(self, num_blocks: int) -> tuple[int, int]:
        """(first, last) indices into the trunk's token list (tokens after block i are
        ``tokens[i + 1]``), ``last`` exclusive: the n blocks ending two before the last."""
        n = self.num_spatial
        if n is None:
            n = RELEASED_NUM_SPATIAL.get(num_blocks, num_blocks - 4)
        first = num_blocks - 1 - n
        if n < 1 or first < 1:
            raise ValueError(f'CorrCLIPAttention: num_spatial={n} for a tower of {num_blocks} '
                             f'blocks; expected 1..{num_blocks - 2} (ViT-B: 5)')
        return first, num_blocks - 1

    def mask_class_tokens(self, blocks: nn.ModuleList, tokens: list[Tensor],
                          regions: Tensor) -> tuple[Tensor, Tensor]:
        """Mask class tokens through every block (the released attention mask: an MCT attends
        to [CLS] and its region's patches, not to itself or other MCTs; no other token attends
        to an MCT, so the trunk is unchanged and is not rerun).

        Args:
            regions: (B, N) labels at the CLIP grid.

        Returns:
            (B, R, D) MCTs leaving the last block (R: the most regions in a window; unused
            rows are padding) and (B, N) the row of each patch's MCT.
        """
        B, N = regions.shape
        index = torch.zeros_like(regions)
        count = []
        for b in range(B):
            values, inverse = torch.unique(regions[b], return_inverse=True)
            index[b] = inverse
            count.append(len(values))
        R = max(count)
        member = F.one_hot(index, R).transpose(1, 2).bool()  # (B, R, N)
        allowed = torch.cat([member.new_ones(B, R, NUM_PREFIX_TOKENS), member], dim=2)
        m = tokens[0][:, :NUM_PREFIX_TOKENS].expand(B, R, -1)  # [CLS] after ln_pre
        for block, x in zip(blocks, tokens):
            q = block_qkv(block, m)[0]  # (B, nh, R, hd)
            _, k, v = block_qkv(block, x)  # (B, nh, 1+N, hd)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None])
            m = m + block.ls_1(block.attn.out_proj(merge_heads(out)))
            m = m + block.ls_2(block.mlp(block.ln_2(m)))
        return m, index

    def dense_forward(self, blocks: nn.ModuleList, tokens: list[Tensor], grid: Grid,
                      images: Tensor) -> tuple[Tensor, Grid, None]:
        masks = self.window_masks(images)  # (B, H, W)
        qk = self.proxy.forward_qk(self.proxy_images(images))  # (B, C, I, J)
        B, dgrid = qk.shape[0], tuple(qk.shape[-2:])  # the DINO grid (I, J)
        f = F.normalize(qk.flatten(2).transpose(1, 2).float(), dim=-1)  # (B, IJ, C)
        regions = regions_to_grid(masks, dgrid)  # (B, IJ)
        if self.merge_eps is not None:
            regions = merge_regions(regions, f, self.merge_eps)
        attn = corr_attention(f, regions, self.tau)  # (B, IJ, IJ)
        block = blocks[-1]
        attn_mod = block.attn
        D = tokens[-1].shape[-1]
        first, last = self.spatial_range(len(blocks))
        x = torch.cat([tokens[-1], torch.stack(tokens[first:last]).mean(0)])  # (2B, 1+N, D)
        v = F.linear(block.ln_1(x[:, NUM_PREFIX_TOKENS:]), attn_mod.in_proj_weight[2 * D:],
                     attn_mod.in_proj_bias[2 * D:])  # (2B, N, D)
        v = upsample_tokens(v, grid, dgrid)  # (2B, IJ, D)
        out = attn.repeat(2, 1, 1).to(v.dtype) @ v
        main, spatial = block.ls_1(attn_mod.out_proj(out)).chunk(2)  # (B, IJ, D) each
        # semantic: MCTs at the CLIP grid, each DINO patch takes its CLIP cell's region's
        tok_regions = regions.view(B, *dgrid)
        tok_regions = F.interpolate(tok_regions[:, None].float(), size=tuple(grid),
                                    mode='nearest').flatten(1).round().long()  # (B, N)
        mct, row = self.mask_class_tokens(blocks, tokens, tok_regions)
        row = row[:, nearest_index(tuple(grid), dgrid, row.device)]  # (B, IJ)
        semantic = torch.gather(mct, 1, row[..., None].expand(-1, -1, D))  # (B, IJ, D)
        return torch.stack([main, spatial, semantic.to(main.dtype)]), dgrid, None

    def extra_repr(self) -> str:
        return (f'tau={self.tau}, merge_eps={self.merge_eps}, alpha={self.alpha}, '
                f'beta={self.beta}, num_spatial={self.num_spatial}')


# ----------------------------------------------------------------------------- composition
@MODELS.register_module()
class CorrScopeAttention(RegionMasksMixin, DenseAttention):
    """CorrCLIP's mask-restricted scope Ω under another attention.

    Each softmax term of the wrapped attention's map (``score_terms``: Vanilla, SCLIP,
    ClearCLIP, NACLIP) is restricted to Ω before its softmax,
    A = Σ_t softmax(scores_t + prior_t, −∞ outside Ω), on CLIP's own grid. [CLS] is not in a
    region: its row and column stay unrestricted. Ω's correlation values (for pairs with an
    unsegmented patch) are the cosines of CLIP's last-block q + k, heads side by side: the
    recipe CorrCLIP applies to DINO, with CLIP's block as the correlation encoder. Regions are
    merged (:func:`merge_regions`) with the same features when ``merge_eps`` is set.
    Residual and FFN are the wrapped attention's.

    Args:
        attention: config (or module) of the wrapped :class:`DenseAttention`.
        merge_eps: ε of mask merging (None: no merging).
    """

    # Its mask scope keeps open_clip's one [CLS] outside the regions.
    supported_families = ('openclip',)

    def __init__(self, *, attention: dict | DenseAttention,
                 merge_eps: float | None = None) -> None:
        inner = MODELS.build(attention) if isinstance(attention, dict) else attention
        super().__init__(residual=inner.residual, ffn=inner.ffn)
        require_score_terms(inner, 'CorrScopeAttention')
        self.attention = inner
        self.merge_eps = merge_eps
        self._scope: Tensor | None = None

    def scope(self, q: Tensor, k: Tensor, regions: Tensor) -> Tensor:
        """(B, T, T) bool: Ω on the patches, [CLS] rows and columns all True."""
        f = F.normalize(merge_heads(q + k)[:, NUM_PREFIX_TOKENS:].float(), dim=-1)
        if self.merge_eps is not None:
            regions = merge_regions(regions, f, self.merge_eps)
        omega = corr_scope(regions, f @ f.transpose(1, 2))
        P = NUM_PREFIX_TOKENS
        return F.pad(omega, (P, 0, P, 0), value=True)

    def attention_map(self, q: Tensor, k: Tensor, grid: Grid, scope: Tensor) -> Tensor:
        """(B, nh, T, T): the wrapped map's softmax terms restricted to ``scope``."""
        attn = 0
        for scores, prior in self.attention.score_terms(q, k, grid):
            if prior is not None:
                scores = scores + prior
            attn = attn + scores.masked_fill(~scope[:, None], float('-inf')).softmax(-1)
        return attn

    def attend(self, q: Tensor, k: Tensor, v: Tensor, grid: Grid) -> Tensor:
        if self._scope is None:
            raise RuntimeError('CorrScopeAttention: attend() runs inside dense_forward, which '
                               'sets the regions')
        return self.attention_map(q, k, grid, self._scope) @ v

    def dense_forward(self, blocks: nn.ModuleList, tokens: list[Tensor], grid: Grid,
                      images: Tensor) -> tuple[Tensor, Grid, Tensor]:
        regions = regions_to_grid(self.window_masks(images), grid)  # (B, N)
        q, k, _ = block_qkv(blocks[-1], tokens[-1])
        self._scope = self.scope(q, k, regions)
        try:
            return super().dense_forward(blocks, tokens, grid, images)
        finally:
            self._scope = None

    def extra_repr(self) -> str:
        return f'merge_eps={self.merge_eps}'


# ----------------------------------------------------------------------------- map correction
def map_correction(labels: Tensor, regions: Tensor) -> Tensor:
    """Each region (label != 0) takes the most frequent of its pixels' labels.

    corrclip_segmentor.py@103bc18 ``postprocess_result`` (``torch.mode`` per mask, after the
    argmax and ``prob_thd``); ties go to the smallest label.

    Args:
        labels: (H, W) int class labels.
        regions: (H, W) int region map, 0 = unsegmented (left as predicted).
    """
    if labels.shape != regions.shape:
        raise ValueError(f'map_correction: labels {tuple(labels.shape)} and regions '
                         f'{tuple(regions.shape)} differ in size')
    values, inverse = torch.unique(regions.flatten(), return_inverse=True)
    K = int(labels.max()) + 1
    counts = torch.zeros(len(values) * K, dtype=torch.long, device=labels.device)
    counts.index_add_(0, inverse * K + labels.flatten().long(), torch.ones_like(inverse))
    mode = counts.view(len(values), K).argmax(1)  # first maximum: the smallest label
    corrected = mode[inverse].view_as(labels).to(labels.dtype)
    return torch.where(regions == UNSEGMENTED, labels, corrected)


# ----------------------------------------------------------------------------- the segmentor
@MODELS.register_module()
class CorrCLIPSegmentor(OpenVocabSegmentor):
    """OpenVocabSegmentor with CorrCLIP's region masks: one map per image from
    ``mask_generator``, cropped with each window for the last block, and the map correction
    after the argmax.

    The map travels with the image as a fourth channel (label + 1; zero padding becomes -1,
    the padding region) through the slide windows, and :meth:`score_windows` hands each
    window's to the backbone's attention (``use_masks``).

    Args:
        mask_generator: config of a :class:`~denseclip.models.masks.MaskGenerator`
            (``SAMMaskGenerator``, ``SuperpixelMaskGenerator``).
        map_correction: apply :func:`map_correction` to the labels (released: always).
        **kwargs: :class:`OpenVocabSegmentor`'s. ``refiner``, ``global_view`` and
            ``resize_to`` are refused: CorrCLIP has none.
    """

    def __init__(self, *, mask_generator: dict | nn.Module, map_correction: bool = True,
                 **kwargs) -> None:
        for key in ('refiner', 'global_view', 'resize_to'):
            if kwargs.get(key):
                raise ValueError(f'CorrCLIPSegmentor: {key}={kwargs[key]!r} is not supported '
                                 '(the released CorrCLIP has none; its map correction refines)')
        super().__init__(**kwargs)
        self.mask_generator = (MODELS.build(mask_generator) if isinstance(mask_generator, dict)
                               else mask_generator)
        if not hasattr(self.backbone.dense, 'use_masks'):
            raise TypeError(f'CorrCLIPSegmentor: backbone dense attention '
                            f'{type(self.backbone.dense).__name__} takes no region masks; use '
                            'CorrCLIPAttention or CorrScopeAttention')
        self.map_correction = map_correction
        self._regions: Tensor | None = None
        self.mask_seconds = 0.0  # time spent in the mask generator (benchmarks read it)

    def image_pixels(self, image: Tensor) -> np.ndarray:
        """(1, 3, H, W) network input -> (H, W, 3) uint8 RGB, the data preprocessor undone."""
        pixels = self.pixels(image)[0]
        return pixels.round().clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()

    def regions_of(self, image: Tensor) -> Tensor:
        """(H, W) long region map of a (1, 3, H, W) input, from the generator (and its
        cache)."""
        start = time.perf_counter()
        regions = self.mask_generator(self.image_pixels(image))
        self.mask_seconds += time.perf_counter() - start
        return torch.from_numpy(np.asarray(regions, dtype=np.int64)).to(image.device)

    @torch.inference_mode()
    def inference(self, image: Tensor, ori_shape, text: Tensor | None = None) -> Tensor:
        if image.shape[0] != 1 or image.shape[1] != 3:
            raise ValueError(f'CorrCLIPSegmentor.inference: expected one (1, 3, H, W) image, '
                             f'got {tuple(image.shape)}')
        regions = self.regions_of(image)  # (H, W)
        size = tuple(int(s) for s in ori_shape[:2])
        self._regions = F.interpolate(regions[None, None].float(), size=size,
                                      mode='nearest')[0, 0].long()
        stacked = torch.cat([image, (regions + 1).to(image.dtype)[None, None]], dim=1)
        return super().inference(stacked, ori_shape, text)

    def score_windows(self, crops: Tensor, text: Tensor) -> Tensor:
        if crops.shape[1] != 4:
            raise ValueError('CorrCLIPSegmentor: windows carry their region masks as a 4th '
                             f'channel (inference() adds it); got {tuple(crops.shape)}')
        masks = crops[:, 3].round().long() - 1  # 0 = unsegmented, -1 = padding
        with self.backbone.dense.use_masks(masks):
            return super().score_windows(crops[:, :3], text)

    def postprocess(self, logits: Tensor, vocabulary=None) -> tuple[Tensor, Tensor]:
        """:meth:`OpenVocabSegmentor.postprocess`, then the map correction with the region map
        of the image :meth:`inference` last segmented (the released ``self.instance_masks``)."""
        probs, labels = super().postprocess(logits, vocabulary)
        if self.map_correction:
            if self._regions is None or self._regions.shape != labels.shape:
                raise RuntimeError('CorrCLIPSegmentor.postprocess: no region map of this '
                                   'image; call inference() on it first')
            labels = map_correction(labels, self._regions.to(labels.device))
        return probs, labels


__all__ = ['CorrCLIPAttention', 'CorrScopeAttention', 'CorrCLIPSegmentor', 'corr_scope',
           'corr_attention', 'merge_regions', 'connected_components', 'map_correction',
           'regions_to_grid']
