"""Box search on a heat map: the box that holds most of the heat for the least area.

Adapting CLIP for phrase localization (Li, Shakhnarovich, Yeh, 2022, arXiv 2204.03647;
pals-ttic/adapting-CLIP@d2026f3 ``utils/box_search.py``) maximises over every box ``b``

    f(b) = (heat inside b) / (heat of the map) - alpha * area(b) / area(map)

first over all boxes of the map downsampled to 1/``downsample`` (bilinear), then over the
boxes whose corners lie within ``downsample`` pixels of the coarse optimum at full resolution.
Every box sum comes from one integral image; the candidate corners broadcast into a 4-d
objective tensor, so each stage is a handful of tensor operations.

Boxes are ``(x1, y1, x2, y2)`` of *inclusive* pixel indices with ``x2 > x1`` and ``y2 > y1``,
as in the released search; ties go to the first box in ``(x1, y1, x2, y2)`` lexicographic order
(the released ``cartesian_prod`` order, ``argmax`` picking the first maximum).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['box_objective', 'search_boxes', 'box_search']

Interval = tuple[int, int]  # inclusive (lo, hi)


def integral_image(heat: Tensor) -> Tensor:
    """(H, W) -> (H+1, W+1) float64 cumulative sums, zero first row and column."""
    return F.pad(heat.double().cumsum(0).cumsum(1), (1, 0, 1, 0))


def box_objective(heat: Tensor, boxes: Tensor, alpha: float) -> Tensor:
    """f(b) for explicit boxes.

    Args:
        heat: (H, W) non-negative heat map.
        boxes: (K, 4) int64 inclusive ``(x1, y1, x2, y2)``.
        alpha: weight of the area fraction.

    Returns:
        (K,) float64 objective values.
    """
    sums = integral_image(heat)
    x1, y1, x2, y2 = boxes.long().unbind(1)
    inside = sums[y2 + 1, x2 + 1] - sums[y2 + 1, x1] - sums[y1, x2 + 1] + sums[y1, x1]
    area = (x2 - x1 + 1).double() * (y2 - y1 + 1).double() / heat.numel()
    return inside / (sums[-1, -1] + 1e-8) - alpha * area  # the released 1e-8


def search_boxes(heat: Tensor, alpha: float, x1: Interval, y1: Interval, x2: Interval,
                 y2: Interval) -> tuple[Tensor, float]:
    """The best box whose corners lie in the given inclusive ranges (clipped to the map).

    Args:
        heat: (H, W) non-negative heat map.
        alpha: weight of the area fraction.
        x1, y1, x2, y2: inclusive ``(lo, hi)`` range of each coordinate.

    Returns:
        the (4,) int64 box and its objective value.

    Raises:
        ValueError: no box with ``x2 > x1`` and ``y2 > y1`` fits the ranges (a map narrower
            or lower than 2 pixels).
    """
    H, W = heat.shape
    sums = integral_image(heat)
    dev = heat.device

    def axis(lo_hi: Interval, size: int) -> Tensor:
        return torch.arange(max(0, lo_hi[0]), min(lo_hi[1], size - 1) + 1, device=dev)

    ax1, ay1, ax2, ay2 = axis(x1, W), axis(y1, H), axis(x2, W), axis(y2, H)
    # Broadcast over (x1, y1, x2, y2): the cartesian product without materialising it.
    X1, Y1 = ax1.view(-1, 1, 1, 1), ay1.view(1, -1, 1, 1)
    X2, Y2 = ax2.view(1, 1, -1, 1), ay2.view(1, 1, 1, -1)
    inside = sums[Y2 + 1, X2 + 1] - sums[Y2 + 1, X1] - sums[Y1, X2 + 1] + sums[Y1, X1]
    area = (X2 - X1 + 1).double() * (Y2 - Y1 + 1).double() / (H * W)
    value = inside / (sums[-1, -1] + 1e-8) - alpha * area  # (n_x1, n_y1, n_x2, n_y2)
    value = value.masked_fill((X2 <= X1) | (Y2 <= Y1), float('-inf'))
    if value.numel() == 0 or not torch.isfinite(value).any():
        raise ValueError(f'box_search: no box with x2 > x1 and y2 > y1 in a {H}x{W} map for '
                         f'x1 in {x1}, y1 in {y1}, x2 in {x2}, y2 in {y2}; the map needs at '
                         'least 2x2 pixels')
    best = int(value.flatten().argmax())  # the first maximum, in (x1, y1, x2, y2) order
    i, j, k, m = torch.unravel_index(torch.tensor(best), value.shape)
    box = torch.stack([ax1[i], ay1[j], ax2[k], ay2[m]]).cpu()
    return box, float(value.flatten()[best])


def box_search(heat: Tensor, alpha: float, downsample: int = 8) -> tuple[Tensor, float]:
    """Coarse-to-fine box search (utils/box_search.py@d2026f3 ``BruteForceBoxSearch``).

    Args:
        heat: (H, W) non-negative heat map (the paper's, at 224 x 224).
        alpha: weight of the area fraction (0.8 for ViT-B/16 on Flickr30k, ...).
        downsample: the coarse stage runs on the map resized to (H // d, W // d) (bilinear,
            ``align_corners=False``), and the fine stage moves every corner by up to d pixels.

    Returns:
        the (4,) int64 inclusive box ``(x1, y1, x2, y2)`` in ``heat``'s pixels, and its
        objective value on ``heat``.

    Raises:
        ValueError: ``heat`` is not 2-d, smaller than 2 x 2, or has a negative or non-finite
            value; ``downsample`` < 1.
    """
    if heat.ndim != 2 or min(heat.shape) < 2:
        raise ValueError(f'box_search: expected an (H, W) heat map of at least 2x2, got '
                         f'{tuple(heat.shape)}')
    if not torch.isfinite(heat).all() or (heat < 0).any():
        raise ValueError('box_search: the heat map must be finite and non-negative')
    if downsample < 1:
        raise ValueError(f'box_search: downsample={downsample}; expected an integer >= 1')
    H, W = heat.shape
    heat = heat.float()
    h, w = H // downsample, W // downsample
    if downsample == 1 or min(h, w) < 2:
        # Deviation: the released search fails on maps under 2*downsample pixels; the single
        # full-resolution stage is the exhaustive search it approximates.
        return search_boxes(heat, alpha, (0, W - 1), (0, H - 1), (0, W - 1), (0, H - 1))
    coarse = F.interpolate(heat[None, None], (h, w), mode='bilinear',
                           align_corners=False)[0, 0]  # (h, w)
    anchor, _ = search_boxes(coarse, alpha, (0, w - 1), (0, h - 1), (0, w - 1), (0, h - 1))
    cx1, cy1, cx2, cy2 = (int(c) * downsample for c in anchor)  # back to full resolution
    d = downsample
    return search_boxes(heat, alpha, (cx1 - d, cx1 + d), (cy1 - d, cy1 + d),
                        (cx2 - d, cx2 + d), (cy2 - d, cy2 + d))
