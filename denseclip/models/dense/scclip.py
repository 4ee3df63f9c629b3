"""SC-CLIP: self-calibrated CLIP, training-free.

Bai et al., "Self-Calibrated CLIP for Training-Free Open-Vocabulary Segmentation",
arXiv 2411.15869; SuleBai/SC-CLIP@0417ba9 ``clip/model.py`` (``VisionTransformer.forward``,
``lof_pytorch``, ``custom_attn``, ``adaptively_aggregate``, ``mean_interpolation``),
``scclip_segmentor.py``, ``configs/``. With F_i the tokens after block i (``feats_list[i]``)::

    anomalies  = LOF outliers of F_{L-2}'s patches (k = 30, top 5% of scores)
    P, P_pre   = F_{L-2}, F_pre patches, each anomaly replaced by the mean of its 3x3 neighbours
    S_mid      = cos(P_pre, P_pre),  W(S) = S · [S >= β] row-normalised          (β = 0.4)
    attn(x)    = ½[softmax(3·(S_mid − mean S_mid), negatives −∞) + softmax(s·k kᵀ)]
    block(x)   = out_proj(attn · v(LN1 x))                   no residual, no FFN, no [CLS]
    z          = W(S_post) · (block(W(S_mid)·P) + r·[CLS]_{L-2})                     (r = 0.3)
             + W(S_post) · (block(M) + r·[CLS]_M),    M = Σ_{i=3..9} F_i (multi-level)

The output is the patch tokens alone (the released ``return_all`` path has no [CLS]).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from denseclip.registry import MODELS

from .base import NUM_PREFIX_TOKENS, DenseAttention, Grid, block_qkv, merge_heads


def lof_outliers(x: Tensor, n_neighbors: int = 30, contamination: float = 0.05,
                 rule: str = 'released') -> Tensor:
    """Local-outlier-factor anomalies of each image's tokens, batched.

    Args:
        x: (B, N, D) tokens.
        n_neighbors: k.
        contamination: the share of tokens called outliers: those whose score is above the
            scores' (1 - contamination) quantile.
        rule: ``'released'``: ``lof_pytorch`` as released, on squared distances, the
            reachability distance max(d(a, b), k-dist(a)) with the point's own k-distance;
            ``'standard'``: Breunig et al.'s LOF (scikit-learn's ``LocalOutlierFactor``):
            Euclidean distances, max(d(a, b), k-dist(b)).

    Returns:
        (B, N) bool, True at the outliers; the (B, N) scores are :func:`lof_scores`'.
    """
    scores = lof_scores(x, n_neighbors, rule)
    threshold = torch.quantile(scores.float(), 1 - contamination, dim=1, keepdim=True)
    return scores > threshold


def lof_scores(x: Tensor, n_neighbors: int = 30, rule: str = 'released') -> Tensor:
    """(B, N) local outlier factors of each image's tokens (see :func:`lof_outliers`)."""
    if rule not in ('released', 'standard'):
        raise ValueError(f"lof_scores: rule={rule!r}; expected 'released' or 'standard'")
    # Deviation: a window of at most k tokens (a tiny image) takes every other token as its
    # neighbourhood; the released topk fails there.
    n_neighbors = min(n_neighbors, x.shape[1] - 1)
    if n_neighbors < 1:
        return x.new_ones(x.shape[:2])  # one token: nothing to compare, no outlier
    d = torch.cdist(x.float(), x.float(), compute_mode='donot_use_mm_for_euclid_dist')
    if rule == 'released':
        d = d ** 2
    knn, idx = d.topk(n_neighbors + 1, dim=-1, largest=False)
    knn, idx = knn[..., 1:], idx[..., 1:]  # (B, N, k) without the point itself
    k_dist = knn[..., -1]  # (B, N)
    if rule == 'released':
        reach = torch.maximum(knn, k_dist[..., None])
    else:
        reach = torch.maximum(knn, torch.gather(k_dist, 1, idx.flatten(1)).view_as(knn))
    lrd = 1 / reach.mean(dim=-1).clamp_min(1e-10)  # released: k / sum
    return (torch.gather(lrd, 1, idx.flatten(1)).view_as(knn) / lrd[..., None]).mean(-1)


def fill_from_neighbours(patches: Tensor, outliers: Tensor, grid: Grid) -> Tensor:
    """Each outlier token replaced by the mean of its 3x3 neighbours that are not outliers
    (``mean_interpolation``); an outlier with none keeps its value.

    Args:
        patches: (B, N, D), N = h * w row-major.
        outliers: (B, N) bool.
    """
    B, N, D = patches.shape
    keep = (~outliers).to(patches.dtype).view(B, 1, *grid)
    fmap = patches.transpose(1, 2).reshape(B, D, *grid) * keep
    ring = torch.ones(1, 1, 3, 3, dtype=patches.dtype, device=patches.device)
    ring[0, 0, 1, 1] = 0
    total = F.conv2d(F.pad(fmap, (1, 1, 1, 1)), ring.expand(D, 1, 3, 3), groups=D)
    count = F.conv2d(F.pad(keep, (1, 1, 1, 1)), ring)  # (B, 1, h, w)
    mean = (total / count.clamp_min(1)).flatten(2).transpose(1, 2)  # (B, N, D)
    update = outliers & (count.flatten(1) > 0)
    return torch.where(update[..., None], mean, patches)


def aggregate(x: Tensor, sim: Tensor, beta: float) -> Tensor:
    """Row-normalised pooling of ``x`` (B, N, D) with the similarities at least ``beta``
    (``adaptively_aggregate``)."""
    w = sim.masked_fill(sim < beta, 0.0)
    return (w / (w.sum(-1, keepdim=True) + 1e-6)) @ x


def cosine(patches: Tensor) -> Tensor:
    """(B, N, N) cosine similarities of (B, N, D) tokens."""
    f = F.normalize(patches, dim=-1)
    return f @ f.transpose(1, 2)


@MODELS.register_module()
class SCCLIPAttention(DenseAttention):
    """SC-CLIP (see the module docstring). The indices are ``feats_list``'s: tokens after block
    i (0-based), i <= L-2; ``multi_end_idx`` is exclusive.

    Args:
        beta: β, the similarity threshold of the pooling (0.4).
        pre_adjust_idx: the block whose features give S_mid (8 for ViT-B, 16 for ViT-L).
        post_adjust_idx: the block whose features give S_post (3; ViT-L 6).
        multi_start_idx, multi_end_idx: the multi-level range (3, 10; ViT-L 8, 20).
        res_cls: r, the weight of [CLS] added to the last block's output (0.3; ViT-L 0.1).
        lof_neighbors, contamination: the anomaly detector's k and outlier share (30, 0.05).
        lof_rule: :func:`lof_outliers`'s rule (``'released'``).
    """

    # Its anomaly resolution and multi-level fusion assume one [CLS] before the patches.
    supported_families = ('openclip',)

    def __init__(self, *, beta: float = 0.4, pre_adjust_idx: int = 8, post_adjust_idx: int = 3,
                 multi_start_idx: int = 3, multi_end_idx: int = 10, res_cls: float = 0.3,
                 lof_neighbors: int = 30, contamination: float = 0.05,
                 lof_rule: str = 'released') -> None:
        super().__init__(residual=False, ffn=False)
        if not multi_start_idx < multi_end_idx:
            raise ValueError(f'SCCLIPAttention: multi_start_idx={multi_start_idx} must be below '
                             f'multi_end_idx={multi_end_idx}')
        self.beta = beta
        self.pre_adjust_idx = pre_adjust_idx
        self.post_adjust_idx = post_adjust_idx
        self.multi = (multi_start_idx, multi_end_idx)
        self.res_cls = res_cls
        self.lof = dict(n_neighbors=lof_neighbors, contamination=contamination, rule=lof_rule)

    def last_block(self, block: nn.Module, x: Tensor, mid: Tensor) -> Tensor:
        """``custom_attn``: ½[softmax(3·(S_mid − mean)) masked + softmax(s·k kᵀ)] v, out_proj;
        ``x`` (B, N, D) patch tokens, ``mid`` (B, N, N). Deviation: the mean of S_mid is per
        image; the released code takes it over its batch, which is one window."""
        _, k, v = block_qkv(block, x)  # (B, nh, N, hd)
        s = 3.0 * (mid - mid.mean(dim=(1, 2), keepdim=True))
        prior = s.masked_fill(s < 0, float('-inf')).softmax(-1)  # the diagonal is 3·(1 − mean)
        keys = (k @ k.transpose(-2, -1) * k.shape[-1] ** -0.5).softmax(-1)
        attn = (prior[:, None].to(keys.dtype) + keys) / 2
        return block.ls_1(block.attn.out_proj(merge_heads(attn @ v)))

    def dense_forward(self, blocks: nn.ModuleList, tokens: list[Tensor], grid: Grid,
                      images: Tensor) -> tuple[Tensor, Grid, None]:
        feats = tokens[1:]  # feats_list: tokens after blocks 0..L-2
        top = len(feats) - 1
        for name, i in (('pre_adjust_idx', self.pre_adjust_idx),
                        ('post_adjust_idx', self.post_adjust_idx),
                        ('multi_end_idx', self.multi[1] - 1)):
            if not 0 <= i <= top:
                raise ValueError(f'SCCLIPAttention: {name} reaches block {i}; this tower has '
                                 f'blocks 0..{top} before the last (ViT-B: 8/3/3..10, ViT-L: '
                                 '16/6/8..20)')
        P = NUM_PREFIX_TOKENS
        last = feats[-1]
        # Deviation: rows are index // w; the released code divides by the grid's first side
        # (feat_w is H there), which misplaces anomalies on non-square windows.
        outliers = lof_outliers(last[:, P:], **self.lof)
        patches = fill_from_neighbours(last[:, P:], outliers, grid)
        mid = cosine(fill_from_neighbours(feats[self.pre_adjust_idx][:, P:], outliers, grid))
        post = cosine(feats[self.post_adjust_idx][:, P:])
        block = blocks[-1]
        x = self.last_block(block, aggregate(patches, mid, self.beta), mid)
        x = aggregate(x + self.res_cls * last[:, :P], post, self.beta)
        multi = torch.stack(feats[self.multi[0]:self.multi[1]]).sum(0)
        y = self.last_block(block, multi[:, P:], mid) + self.res_cls * multi[:, :P]
        return x + aggregate(y, post, self.beta), grid, None

    def extra_repr(self) -> str:
        return (f'beta={self.beta}, pre_adjust_idx={self.pre_adjust_idx}, '
                f'post_adjust_idx={self.post_adjust_idx}, multi={self.multi}, '
                f'res_cls={self.res_cls}, lof={self.lof}')
