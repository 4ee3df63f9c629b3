"""Mask sources computed by the model: PixelCLIP's DINO k-means masks (``MODEL.DINO``).

The pipeline-side sources (SA-1B annotations, segment-anything's automatic generator on any
image folder, the toy world's segments) are transforms in :mod:`denseclip.datasets.sa1b`; this
one needs a network on the device, so it runs inside the segmentor on the weak view.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from denseclip.models.backbones.proxy import from_clip_normalisation
from denseclip.registry import MODELS

__all__ = ['kmeans', 'DINOKMeansMasks']


@torch.no_grad()
def kmeans(x: Tensor, k: int, max_iter: int = 100, tol: float = 1e-4,
           generator: torch.Generator | None = None) -> Tensor:
    """Euclidean k-means (Lloyd), as fast_pytorch_kmeans' ``KMeans(n_clusters=k)`` with its
    defaults runs it: k distinct random samples as centroids, assign to the nearest, move each
    centroid to its samples' mean (an empty cluster keeps its centroid), stop after ``max_iter``
    or when the centroids moved by at most ``tol`` (sum of squares).

    Args:
        x: (N, C) samples, N >= k.
        generator: the random source of the initial centroids.

    Returns:
        (N,) int64 cluster ids in [0, k).
    """
    N = x.shape[0]
    if not 0 < k <= N:
        raise ValueError(f'kmeans: k={k} clusters for {N} samples; expected 0 < k <= N')
    x = x.float()
    init = torch.randperm(N, generator=generator, device='cpu')[:k].to(x.device)
    centroids = x[init]  # (k, C)
    for _ in range(max_iter):
        ids = torch.cdist(x, centroids).argmin(dim=1)  # (N,)
        sums = torch.zeros_like(centroids).index_add_(0, ids, x)  # (k, C)
        counts = torch.bincount(ids, minlength=k)[:, None]  # (k, 1)
        moved = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        shift = (moved - centroids).pow(2).sum()
        centroids = moved
        if shift <= tol:
            break
    return torch.cdist(x, centroids).argmin(dim=1)



@MODELS.register_module()
class DINOKMeansMasks(nn.Module):
    """PixelCLIP's ``MODEL.DINO`` masks: k-means (16 clusters) on each image's DINO ViT-S/16
    patch features, one mask per cluster (pixelclip.py ``get_dino_masks``).

    Args:
        dino: a :class:`~denseclip.models.backbones.DINOProxy` config (released: torch.hub
            ``dino_vits16``, i.e. timm ``vit_small_patch16_224.dino``); frozen.
        num_clusters: k (16).
        max_iter, tol: k-means' (fast_pytorch_kmeans defaults 100, 1e-4).
        seed: seeds the generator of the initial centroids (advanced every call).
    """

    def __init__(self, dino: dict | None = None, num_clusters: int = 16, max_iter: int = 100,
                 tol: float = 1e-4, seed: int = 0) -> None:
        super().__init__()
        self.dino = MODELS.build(dino or dict(type='DINOProxy',
                                              model='vit_small_patch16_224.dino'))
        self.dino.requires_grad_(False)
        self.num_clusters, self.max_iter, self.tol = num_clusters, max_iter, tol
        self.generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def forward(self, images: Tensor) -> list[Tensor]:
        """CLIP-normalised (B, 3, H, W) -> B bool masks (k, H, W) (nearest-upsampled cluster
        maps; a cluster may be empty)."""
        p = self.dino.patch_size
        x = from_clip_normalisation(images, self.dino.mean, self.dino.std)
        H, W = images.shape[-2:]
        if H % p or W % p:
            x = F.interpolate(x, size=(H // p * p, W // p * p), mode='bilinear',
                              align_corners=False)
        feats = self.dino.eval()(x)  # (B, C, h, w)
        grid = feats.shape[-2:]
        masks = []
        for f in feats.flatten(2).transpose(1, 2):  # (hw, C)
            ids = kmeans(f, self.num_clusters, self.max_iter, self.tol, self.generator)
            onehot = F.one_hot(ids, self.num_clusters).T.reshape(1, -1, *grid).float()
            masks.append(F.interpolate(onehot, size=(H, W), mode='nearest')[0].bool())
        return masks
