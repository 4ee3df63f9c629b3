"""A CLIP ViT presented as a four-stage trunk (the interface of
:class:`~denseclip.models.backbones.CLIPConvNeXt`), for mask-classification heads built on
hierarchical trunks (MAFT+) run with a ViT CLIP, as on the toy world."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from denseclip.models.backbones.clip_vit import CLIPViT, DenseOutput
from denseclip.registry import MMDET_MODELS, MODELS


@MMDET_MODELS.register_module()
@MODELS.register_module()
class CLIPViTStages(CLIPViT):
    """A CLIP ViT presented as a four-stage trunk, for MAFT+ on ViT CLIPs (the toy world's CLIP
    is a ViT; MAFT+'s are ConvNeXts, :class:`~denseclip.models.backbones.CLIPConvNeXt`).

    The maps after the four ``out_indices`` blocks (pre ``ln_post``) are resized to strides
    p/4, p/2, p and p (bilinear, no weights), the trunk levels a Mask2Former pixel decoder
    takes; the last one is the trunk output, and :meth:`dense_head` (``ln_post`` then ``proj``
    per location) is the CLIP head applied to it or to pooled vectors, as a ConvNeXt's
    ``trunk.head.norm`` + ``head``. Same interface as ``CLIPConvNeXt``: ``forward_dense``
    (levels = stage maps, feats = dense_head(last)), ``dense_head``, ``stage_channels``.

    Args:
        out_indices: four blocks (default: the last four).
        **kwargs: :class:`CLIPViT`'s ``model``, ``pretrained``, ``dense``, ``pos_interp``.
    """

    SCALES = (4, 2, 1, 1)

    def __init__(self, out_indices: tuple[int, ...] = (-4, -3, -2, -1), **kwargs) -> None:
        if len(out_indices) != 4:
            raise ValueError(f'CLIPViTStages: out_indices={out_indices}; four blocks are '
                             'needed (strides p/4, p/2, p, p)')
        super().__init__(out_indices=out_indices, **kwargs)
        if self.out_indices[-1] != len(self.blocks) - 1:
            raise ValueError(f'CLIPViTStages: out_indices={out_indices} must end with the last '
                             'block, whose map is the trunk output')
        self.stage_channels = (self.width,) * 4

    def stages(self, images: Tensor) -> list[Tensor]:
        """(B, D, h·f, w·f) maps for f = 4, 2, 1, 1, (h, w) the patch grid."""
        maps = CLIPViT.forward(self, images)
        return [m if f == 1 else F.interpolate(m, scale_factor=f, mode='bilinear',
                                                align_corners=False)
                for m, f in zip(maps, self.SCALES)]

    def dense_head(self, x: Tensor) -> Tensor:
        """The tower's per-token map to the joint space (``ln_post`` and ``proj``) at every
        location: (B, D, h, w) -> (B, E, h, w)."""
        return self.tower.post(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward_dense(self, images: Tensor) -> DenseOutput:
        outs = self.stages(images)
        return DenseOutput(feats=self.dense_head(outs[-1]), grid=tuple(outs[-1].shape[-2:]),
                           tokens=[outs[-1]], images=images, levels=tuple(outs))

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.stages(images))
