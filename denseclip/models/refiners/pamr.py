"""PAMR: Pixel-Adaptive Mask Refinement.

From "Single-Stage Semantic Segmentation from Image Labels", Araslanov and Roth, CVPR 2020,
https://arxiv.org/abs/2005.08104. Official code: visinf/1-stage-wseg `models/mods/pamr.py`
@bebc9a6; NACLIP (sinahmr/NACLIP `pamr.py`@cbb720d) and SCLIP (wangf3014/SCLIP
`pamr.py`@d84d4ab) ship the same code. Each pixel's mask value is replaced, ``num_iter`` times,
by a weighted average of its 8 neighbours at every dilation, with weights given by a softmax of
image-colour similarity normalised by the local colour spread, so masks snap to image edges.

Where training-free CLIP segmenters apply it (the segmentor decides; this module only refines):
both feed it the raw cosine logits, before ``logit_scale`` and the softmax, together with the
CLIP-normalised image resized to the logits' size. NACLIP runs it by default (10 steps,
dilations (8, 16)) once, after the sliding-window logits are upsampled to the image size;
SCLIP runs it optionally inside each sliding window, on the crop's upsampled logits.
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from denseclip.models.refiner_protocols import ScoreRefiner
from denseclip.registry import MODELS

__all__ = ['pamr', 'PAMRRefiner']

_CENTRE = 4  # index of the centre in a row-major flattened 3x3 window
_NEIGHBOURS = [i for i in range(9) if i != _CENTRE]


def _check_params(dilations: Sequence[int], num_iter: int) -> Tuple[int, ...]:
    dilations = tuple(dilations)
    if not dilations or not all(isinstance(d, int) and d >= 1 for d in dilations):
        raise ValueError(
            f'pamr: dilations={dilations!r}; expected a non-empty sequence of ints >= 1, '
            'e.g. (8, 16) as in NACLIP')
    if not isinstance(num_iter, int) or num_iter < 0:
        raise ValueError(f'pamr: num_iter={num_iter!r}; expected an int >= 0, e.g. 10')
    return dilations


def _windows(x: Tensor, dilation: int) -> Tensor:
    """Gather every pixel's 3x3 window at ``dilation``, replicate-padded at the border.

    Args:
        x: (B, C, H, W).
        dilation: spacing between the window's taps, in pixels.

    Returns:
        (B, C, 9, H, W), the taps in row-major order; tap ``_CENTRE`` is ``x`` itself.
    """
    B, C, H, W = x.shape
    x = F.pad(x, [dilation] * 4, mode='replicate')  # (B, C, H + 2d, W + 2d)
    return F.unfold(x, kernel_size=3, dilation=dilation).view(B, C, 9, H, W)


def pamr(
    image: Tensor, mask: Tensor, dilations: Sequence[int] = (8, 16), num_iter: int = 10
) -> Tensor:
    """Refine ``mask`` by ``num_iter`` steps of image-adaptive neighbour averaging.

    The affinity of pixel p to neighbour q (8 neighbours per dilation) is
    ``softmax_q(mean_c(-|I_p - I_q| / (1e-8 + 0.1 * sigma_p)))``, and each step sets
    ``mask_p <- sum_q affinity(p, q) * mask_q``. The centre pixel takes no part in the sum.

    Args:
        image: (B, C, H, W) floating image, C = 3 for the CLIP-normalised RGB image.
        mask: (B, K, H, W) floating per-class scores at the image's size (raw cosine logits).
        dilations: neighbourhood radii in pixels; 8 neighbours are taken at each.
        num_iter: number of propagation steps; 0 returns ``mask`` unchanged.

    Returns:
        (B, K, H, W) refined mask, in ``mask``'s dtype.
    """
    dilations = _check_params(dilations, num_iter)
    for name, t in (('image', image), ('mask', mask)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            got = t.dtype if isinstance(t, Tensor) else type(t).__name__
            raise TypeError(f'pamr: {name} must be a floating-point Tensor, got {got}')
        if t.dim() != 4:
            raise ValueError(f'pamr: {name} has shape {tuple(t.shape)}; expected 4-D (B, C, H, W)')
    if image.shape[0] != mask.shape[0] or image.shape[-2:] != mask.shape[-2:]:
        # Deviation: the original resizes the mask to the image inside PAMR (bilinear,
        # align_corners=True); we leave every resize to the segmentor, so sizes must agree.
        raise ValueError(
            f'pamr: image {tuple(image.shape)} and mask {tuple(mask.shape)} differ in batch '
            'size or (H, W); resize one to the other before refining')
    if num_iter == 0:
        return mask

    B, _, H, W = image.shape
    n = len(dilations)
    windows = torch.cat([_windows(image, d) for d in dilations], dim=2)  # (B, C, 9n, H, W)
    # sigma pools the 3x3 windows of all dilations (9n taps, the centre counted n times) and is
    # unbiased (N - 1), as torch.std's default in 1-stage-wseg models/mods/pamr.py@bebc9a6.
    sigma = windows.std(dim=2, keepdim=True)  # (B, C, 1, H, W)
    neighbours = windows.view(B, -1, n, 9, H, W)[:, :, :, _NEIGHBOURS]  # (B, C, n, 8, H, W)
    neighbours = neighbours.flatten(2, 3)  # (B, C, 8n, H, W)
    logits = -(image.unsqueeze(2) - neighbours).abs() / (1e-8 + 0.1 * sigma)
    affinity = logits.mean(dim=1).softmax(dim=1)  # (B, 8n, H, W), softmax over all dilations

    # Zero weight on the centre tap lets each step use the unfolded 3x3 windows as they are.
    weights = affinity.new_zeros(B, n, 9, H, W)
    weights[:, :, _NEIGHBOURS] = affinity.view(B, n, 8, H, W)
    weights = weights.to(mask.dtype)
    for _ in range(num_iter):
        mask = sum(
            torch.einsum('bkphw,bphw->bkhw', _windows(mask, d), weights[:, i])  # (B, K, H, W)
            for i, d in enumerate(dilations))
    return mask


@MODELS.register_module()
class PAMRRefiner(ScoreRefiner):
    """Registered wrapper around :func:`pamr`, holding its two settings.

    Args:
        num_iter: propagation steps (NACLIP: 10).
        dilations: neighbourhood radii in pixels (NACLIP: (8, 16)).
    """

    def __init__(self, num_iter: int = 10, dilations: Sequence[int] = (8, 16)) -> None:
        super().__init__()
        self.dilations = _check_params(dilations, num_iter)
        self.num_iter = num_iter

    def forward(self, image: Tensor, logits: Tensor) -> Tensor:
        """Refine ``logits`` along the edges of ``image``.

        Args:
            image: (B, 3, H, W) CLIP-normalised image, resized to the logits' size.
            logits: (B, K, H, W) raw cosine logits, before the logit scale.

        Returns:
            (B, K, H, W) refined logits.
        """
        return pamr(image, logits, self.dilations, self.num_iter)

    def extra_repr(self) -> str:
        return f'num_iter={self.num_iter}, dilations={self.dilations}'
