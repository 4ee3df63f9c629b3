"""CLIPtrase: "Explore the Potential of CLIP for Training-Free Open Vocabulary Semantic
Segmentation", Shao, Tian, Zhao, Su, ECCV 2024.

arXiv: https://arxiv.org/abs/2407.08268 — code: leaves162/CLIPtrase@2b7de61.

Against plain CLIP, the last block's q-k attention becomes the sum of three self-correlation
softmaxes (q-q, k-k, v-v), residual and FFN kept. A region step then clusters (DBSCAN) the rows
of the second-to-last block's q/k/v cosine self-correlation, recalibrated by subtracting the
[CLS] row, and makes each cluster region agree on one label (a majority vote, or in the d2
variant the mean of its logits).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from denseclip.models.refiner_protocols import PatchRefiner
from denseclip.registry import MODELS

from .base import NUM_PREFIX_TOKENS, DenseAttention, Grid, block_qkv

if TYPE_CHECKING:  # the backbone module imports this package
    from denseclip.models.backbones.clip_vit import CLIPViT, DenseOutput
    from denseclip.models.text import TextClassifier

# clip_self_correlation.py ``self_clip``: cluster maps are upsampled 4x, then median-filtered
# with size 2*4-1.
_UPSAMPLE = 4
_MEDIAN_SIZE = 2 * _UPSAMPLE - 1
# (eps, min_samples) of DBSCAN per input size (self_clip_test; the d2 variant uses 336's).
DBSCAN_PRESETS: dict[int, tuple[float, int]] = {224: (0.7, 3), 336: (1.1, 7)}


def cliptrase_attn(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """(softmax(s·q qᵀ) + softmax(s·k kᵀ) + softmax(s·v vᵀ))·v, (B, nh, T, hd) -> same.

    Rows of the map sum to 3, with no renormalisation (attn2.py ``self_qk_weight``). Issue #1:
    the paper describes a different last-layer attention; the released code, which produced
    the numbers, sums the three softmaxes.
    """
    return (F.scaled_dot_product_attention(q, q, v) + F.scaled_dot_product_attention(k, k, v)
            + F.scaled_dot_product_attention(v, v, v))


@MODELS.register_module()
class CLIPtraseAttention(DenseAttention):
    """The three-softmax self-correlation attention; residual and FFN kept (model.py block 12)."""

    # Its [CLS] contrast and block L-1 correlation are defined on open_clip's [CLS] layout.
    supported_families = ('openclip',)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, grid: Grid) -> Tensor:
        return cliptrase_attn(q, k, v)


def _cosine_map(t: Tensor) -> Tensor:
    t = F.normalize(t, dim=-1)
    return t @ t.transpose(-1, -2)  # (B, nh, T, T)


def cliptrase_correlation(block: nn.Module, x: Tensor) -> Tensor:
    """The recalibrated patch self-correlation W of the second-to-last block.

    M = mean over heads of (cos(q_i, q_j) + cos(k_i, k_j) + cos(v_i, v_j)) / 3 over the 1+N
    tokens (attn2.py ``self_out_weight``); W = M[1:, 1:] − M[0, 1:], the [CLS]→patch row taken
    from every row ("global patch" suppression), and W[W < 0] = 0. Issue #1: the paper's
    criterion uses w_ii; the code subtracts the [CLS] row. Deviation: per image; the released
    script reads image 0 of the batch only (``attn_weights[-2, 0]``), a bug.

    Args:
        block: the open_clip block L-1 (the one before the last).
        x: (B, 1+N, D) tokens entering it.

    Returns:
        (B, N, N) non-negative W.
    """
    q, k, v = block_qkv(block, x)
    m = ((_cosine_map(q) + _cosine_map(k) + _cosine_map(v)) / 3).mean(1)  # (B, T, T)
    P = NUM_PREFIX_TOKENS
    return (m[:, P:, P:] - m[:, :1, P:]).clamp(min=0)  # (B, N, N)


def dbscan_labels(w: Tensor, eps: float, min_samples: int) -> Tensor:
    """scikit-learn DBSCAN (Euclidean) on the rows of one image's W: (N, N) -> (N,) int64,
    -1 for noise."""
    from sklearn.cluster import DBSCAN  # heavy import, only when CLIPtrase's region step runs

    labels = DBSCAN(eps=eps, min_samples=min_samples).fit_predict(w.double().cpu().numpy())
    return torch.from_numpy(labels).long().to(w.device)


def median_filter2d(x: Tensor, size: int) -> Tensor:
    """Per-map median over size×size windows, equal to ``scipy.ndimage.median_filter(m,
    size=size)`` (mode 'reflect': edge samples repeated) on each (H, W) map of x (n, H, W)."""
    pad = size // 2
    n, H, W = x.shape

    def reflect(length: int) -> Tensor:
        i = torch.arange(-pad, length + pad, device=x.device) % (2 * length)
        return torch.where(i >= length, 2 * length - 1 - i, i)

    x = x[:, reflect(H)][:, :, reflect(W)]  # (n, H + 2p, W + 2p)
    windows = x.unfold(1, size, 1).unfold(2, size, 1)  # (n, H, W, size, size)
    return windows.reshape(n, H, W, -1).median(-1).values


def cluster_regions(w: Tensor, labels: Tensor, grid: Grid, size: tuple[int, int]) -> Tensor | None:
    """Pixel regions from DBSCAN clusters of W's rows (clip_self_correlation.py ``self_clip``).

    Each cluster's mean row is an h×w map; the maps are upsampled ×4 (bilinear), median-filtered
    (size 7), upsampled to ``size`` (bilinear), and each pixel takes its argmax cluster.

    Args:
        w: (N, N) W of one image.
        labels: (N,) DBSCAN labels, -1 for noise.
        grid: (h, w) patch grid, N = h*w.
        size: (H, W) output size.

    Returns:
        (H, W) int64 region index (clusters in increasing label order), or None if DBSCAN found
        no cluster.
    """
    clusters = labels.unique()
    clusters = clusters[clusters >= 0]
    if clusters.numel() == 0:
        return None
    maps = torch.stack([w[labels == c].mean(0) for c in clusters])  # (n, N)
    maps = maps.reshape(1, -1, *grid)  # (1, n, h, w)
    up = (grid[0] * _UPSAMPLE, grid[1] * _UPSAMPLE)
    maps = F.interpolate(maps, size=up, mode='bilinear', align_corners=False)[0]  # (n, 4h, 4w)
    maps = median_filter2d(maps, _MEDIAN_SIZE)
    maps = F.interpolate(maps[None], size=size, mode='bilinear', align_corners=False)[0]
    return maps.argmax(0)  # (H, W)


def region_vote(labels: Tensor, regions: Tensor, num_labels: int) -> Tensor:
    """Every pixel of a region takes the region's most frequent label (ties: the smallest).

    Args:
        labels: (H, W) int64 per-pixel labels in [0, num_labels).
        regions: (H, W) int64 region index.
        num_labels: number of possible labels.

    Returns:
        (H, W) int64 voted labels.
    """
    num_regions = int(regions.max()) + 1
    counts = torch.bincount((regions * num_labels + labels).flatten(),
                            minlength=num_regions * num_labels)
    winners = counts.reshape(num_regions, num_labels).argmax(1)  # (R,)
    return winners[regions]


def region_mean(logits: Tensor, regions: Tensor) -> Tensor:
    """Every pixel of a region takes the region's mean logits (the d2 variant's
    ``CLIPtrase.forward``): (Q, H, W), (H, W) -> (Q, H, W)."""
    Q = logits.shape[0]
    flat = regions.flatten()
    num_regions = int(flat.max()) + 1
    sums = logits.new_zeros(Q, num_regions).index_add_(1, flat, logits.reshape(Q, -1))
    counts = torch.bincount(flat, minlength=num_regions).clamp(min=1)
    return (sums / counts)[:, flat].reshape(logits.shape)


def relabel_logits(logits: Tensor, classes: Tensor, query_to_class: Tensor) -> Tensor:
    """Make ``classes`` the argmax of each pixel without changing its confidence.

    At each pixel, the best query of the target class swaps values with the overall best query,
    so the pixel's logit values (and hence its max probability) are only permuted.

    Args:
        logits: (Q, H, W).
        classes: (H, W) int64 target class per pixel.
        query_to_class: (Q,) int64.

    Returns:
        (Q, H, W) logits whose argmax query belongs to ``classes`` at every pixel.
    """
    best = logits.argmax(0, keepdim=True)  # (1, H, W)
    in_class = query_to_class[:, None, None] == classes[None]  # (Q, H, W)
    target = logits.masked_fill(~in_class, float('-inf')).argmax(0, keepdim=True)  # (1, H, W)
    best_val, target_val = logits.gather(0, best), logits.gather(0, target)
    return logits.scatter(0, target, best_val).scatter(0, best, target_val)


@MODELS.register_module()
class CLIPtraseRegionRefiner(PatchRefiner):
    """CLIPtrase's cluster-region step, as a patch refiner of the segmentor.

    ``forward(logits, dense, backbone)`` takes a window batch's patch cosine logits and returns
    logits at the window's input size (H, W), where the released code votes (at the image
    size); the segmentor's bilinear resize to the window is then the identity. If DBSCAN finds
    no cluster in any image, the logits are returned unchanged (as released).

    Deviation: the released code outputs hard labels. ``'vote'`` keeps logits: at every pixel
    the voted class's best query swaps values with the pixel's best query (see
    :func:`relabel_logits`), so the argmax is the vote while scale and max probability stay
    those of the pixel, and windows still merge by summing.

    The segmentor calls :meth:`set_classifier` whenever its vocabulary changes: the vote counts
    classes (the released script merges all background words into one label before voting) and
    the [CLS] product needs the text embeddings.

    Args:
        mode: ``'vote'`` (single-GPU script: majority of per-pixel argmax labels) or
            ``'mean'`` (d2 variant: mean logits per region).
        preset: input size whose DBSCAN settings to use, a key of :data:`DBSCAN_PRESETS`.
        eps: DBSCAN eps overriding the preset.
        min_samples: DBSCAN min_samples overriding the preset.
        clusterer: ``'dbscan'`` (scikit-learn), the only one so far.
        cls_product: multiply the patch logits by the [CLS] logits first (VOC20 in the script,
            every ``'voc'`` dataset in the d2 variant).
    """

    def __init__(self, *, mode: str = 'vote', preset: int = 224, eps: float | None = None,
                 min_samples: int | None = None, clusterer: str = 'dbscan',
                 cls_product: bool = False) -> None:
        super().__init__()
        if mode not in ('vote', 'mean'):
            raise ValueError(f"CLIPtraseRegionRefiner: mode={mode!r}; expected 'vote' or 'mean'")
        if preset not in DBSCAN_PRESETS:
            raise KeyError(f'CLIPtraseRegionRefiner: preset={preset!r}; known: '
                           f'{sorted(DBSCAN_PRESETS)}, or pass eps= and min_samples=')
        if clusterer != 'dbscan':
            raise ValueError(f"CLIPtraseRegionRefiner: clusterer={clusterer!r}; expected "
                             "'dbscan'")
        default_eps, default_min = DBSCAN_PRESETS[preset]
        self.mode = mode
        self.eps = default_eps if eps is None else eps
        self.min_samples = default_min if min_samples is None else min_samples
        self.cls_product = cls_product
        self.embeddings: Tensor | None = None
        self.query_to_class: Tensor | None = None

    def set_classifier(self, classifier: TextClassifier) -> None:
        """Take the queries' unit text embeddings (Q, E) and their classes (Q,) from a
        :class:`~denseclip.models.text.TextClassifier`."""
        self.embeddings = classifier.embeddings
        self.query_to_class = classifier.query_to_class

    def cls_logits(self, dense: DenseOutput) -> Tensor:
        """(B, Q) cosine of the last block's [CLS] output (``dense.cls_feats``, projected)
        with the text queries."""
        if dense.cls_feats is None:
            raise ValueError('CLIPtraseRegionRefiner: cls_product needs the [CLS] token of the '
                             'last block, which this dense method does not compute')
        cls = F.normalize(dense.cls_feats.float(), dim=-1)
        return cls @ self.embeddings.float().T  # (B, Q)

    def forward(self, logits: Tensor, dense: DenseOutput, backbone: CLIPViT) -> Tensor:
        """(B, Q, h, w) patch cosine logits -> (B, Q, H, W) (or the input if nothing
        clustered)."""
        if self.embeddings is None or self.query_to_class is None:
            raise RuntimeError('CLIPtraseRegionRefiner: no vocabulary; the segmentor must call '
                               'set_classifier(classifier) when it sets its vocabulary')
        if self.cls_product:
            # Deviation: the script multiplies 100·cos by 100·cos; the positive 1e4 is dropped
            # (argmax and votes are unchanged).
            logits = logits * self.cls_logits(dense)[:, :, None, None]
        block = backbone.blocks[-2]
        w = cliptrase_correlation(block, dense.tokens[-2].to(block.attn.in_proj_weight.dtype))
        size = tuple(dense.images.shape[-2:])
        query_to_class = self.query_to_class.to(logits.device)
        up = F.interpolate(logits, size=size, mode='bilinear', align_corners=False)
        out, clustered = [], False
        for b in range(logits.shape[0]):
            labels = dbscan_labels(w[b], self.eps, self.min_samples)
            regions = cluster_regions(w[b].float(), labels, dense.grid, size)
            if regions is None:
                out.append(up[b])
            elif self.mode == 'mean':
                out.append(region_mean(up[b], regions))
            else:
                classes = query_to_class[up[b].argmax(0)]  # (H, W)
                voted = region_vote(classes, regions, int(query_to_class.max()) + 1)
                out.append(relabel_logits(up[b], voted, query_to_class))
            clustered = clustered or regions is not None
        return torch.stack(out) if clustered else logits

    def extra_repr(self) -> str:
        return (f'mode={self.mode!r}, eps={self.eps}, min_samples={self.min_samples}, '
                f'cls_product={self.cls_product}')
