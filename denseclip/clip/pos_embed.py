"""Position-embedding interpolation for any input size divisible by the patch size.

Two forms give different numbers, and each method's reference uses one of them
(DESIGN.md §4; reference notes §16):

* ``'size'``: bicubic to the target grid (MaskCLIP, CLIP-DINOiser, timm's
  ``resample_abs_pos_embed``).
* ``'scale_factor'``: bicubic with ``scale_factor=((h + 0.1) / h0, (w + 0.1) / w0)``, the DINO
  "+0.1" trick that SCLIP, NACLIP, ClearCLIP and CLIPtrase inherit
  (SCLIP clip/model.py@b56bd30 ``interpolate_pos_encoding``). The 0.1 makes the floor of the
  output size land on the wanted grid despite float rounding.
* ``'bilinear'``: bilinear to the target grid (DenseCLIP models.py@5eda47f, at load time and
  again in every forward).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

InterpMode = Literal['size', 'scale_factor', 'bilinear']


def resample_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int], *,
                       old_grid: tuple[int, int], num_prefix_tokens: int = 1,
                       mode: InterpMode = 'size') -> torch.Tensor:
    """Resample a ViT's learnt absolute position embedding to a new patch grid.

    Args:
        pos_embed: (P + h0*w0, D) embeddings, prefix ([CLS]) tokens first.
        grid: the new (h, w) patch grid.
        old_grid: the (h0, w0) grid ``pos_embed`` was trained for.
        num_prefix_tokens: P, tokens that are not interpolated.
        mode: ``'size'``, ``'scale_factor'`` or ``'bilinear'`` (see module docstring).

    Returns:
        (P + h*w, D) embeddings, row-major over the new grid; ``pos_embed`` itself when the
        grid is unchanged.
    """
    if tuple(grid) == tuple(old_grid):
        return pos_embed
    if mode not in ('size', 'scale_factor', 'bilinear'):
        raise ValueError(f"pos-embedding interpolation mode={mode!r}; expected 'size', "
                         "'scale_factor' or 'bilinear'")
    prefix, patches = pos_embed[:num_prefix_tokens], pos_embed[num_prefix_tokens:]
    h0, w0 = old_grid
    dim = patches.shape[-1]
    patches = patches.float().reshape(1, h0, w0, dim).permute(0, 3, 1, 2)  # (1, D, h0, w0)
    if mode != 'scale_factor':
        patches = F.interpolate(patches, size=tuple(grid), mode='bicubic' if mode == 'size'
                                else 'bilinear', align_corners=False)
    else:
        scale = ((grid[0] + 0.1) / h0, (grid[1] + 0.1) / w0)
        patches = F.interpolate(patches, scale_factor=scale, mode='bicubic', align_corners=False)
        assert patches.shape[-2:] == tuple(grid), (patches.shape, grid)
    patches = patches.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], dim)  # (h*w, D)
    return torch.cat([prefix, patches.to(pos_embed.dtype)], dim=0)
