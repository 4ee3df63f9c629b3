"""open_clip's ConvNeXt CLIP towers (timm trunk + CLIP head) as a dense backbone.

Dense features are the head applied at every location, as FC-CLIP, MAFT+ and PixelCLIP use a
ConvNeXt CLIP (FC-CLIP ``visual_prediction_forward_convnext``; MAFT-Plus
``maft/modeling/backbone/clip.py``): the trunk's stride-32 map goes through the trunk head's
``norm`` (LayerNorm2d) and then open_clip's projection head (``proj`` Linear or ``mlp``) per
location, skipping the global average pool. On a single-location map this *is* the tower's own
embedding (the pool is then the identity), which the tests check.
"""
from __future__ import annotations

import os

from mmengine.model import BaseModule
from open_clip.model import CLIP
from open_clip.timm_model import TimmModel
from torch import Tensor, nn

from denseclip.models.backbones.clip_vit import (DenseOutput, check_images, keep_loaded_clip,
                                                 load_clip_model)
from denseclip.registry import MMDET_MODELS, MODELS


def is_convnext_tower(visual) -> bool:
    """Whether an open_clip image tower is a timm ConvNeXt (the family this backbone serves)."""
    return isinstance(visual, TimmModel) and type(visual.trunk).__name__ == 'ConvNeXt'


@MODELS.register_module()
@MMDET_MODELS.register_module()
class CLIPConvNeXt(BaseModule):
    """ConvNeXt CLIP: trunk stage maps (strides 4, 8, 16, 32) and per-location CLIP embeddings.

    Args:
        model: open_clip model name (``'convnext_base_w'``, ``'convnext_large_d_320'``...),
            model-config JSON path, or an already-built open_clip ``CLIP``.
        pretrained: open_clip tag, local weights file, or None (random weights).
        out_indices: which of the trunk's stages 0..3 :meth:`forward` returns.

    The backbone contract (:mod:`denseclip.models.backbones.towers`): ``output_stride`` 32,
    ``embed_dim`` E, ``num_prefix_tokens`` 0, ``stage_channels`` (C_0..C_3).
    """

    output_stride = 32
    num_prefix_tokens = 0
    family = 'convnext'

    def __init__(self, model: str | os.PathLike | CLIP | None = 'convnext_base_w',
                 pretrained: str | os.PathLike | None = None,
                 out_indices: tuple[int, ...] = (0, 1, 2, 3),
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        clip, self.source = load_clip_model(model, pretrained)
        if not is_convnext_tower(clip.visual):
            raise TypeError(f'CLIPConvNeXt: model={model!r} has a {type(clip.visual).__name__} '
                            "image tower, not a timm ConvNeXt; use type='CLIPViT' for ViTs and "
                            "type='CLIPResNet' for ResNets")
        if any(i not in range(4) for i in out_indices):
            raise ValueError(f'CLIPConvNeXt: out_indices={out_indices}; each must be in 0..3')
        keep_loaded_clip(self, clip)
        self.visual = clip.visual
        self.out_indices = tuple(out_indices)
        trunk = self.visual.trunk
        self.stage_channels = tuple(info['num_chs'] for info in trunk.feature_info)
        # open_clip's head ends in a Linear (``proj``, or ``mlp.fc2``): its width is E
        self.embed_dim = [m for m in self.visual.head.modules() if isinstance(m, nn.Linear)
                          ][-1].out_features

    def stages(self, images: Tensor) -> list[Tensor]:
        """The trunk's stage outputs, strides 4, 8, 16, 32, (B, C_i, H/s_i, W/s_i)."""
        check_images(images, self.output_stride, 'CLIPConvNeXt')
        trunk = self.visual.trunk
        x = trunk.stem(images.to(trunk.stem[0].weight.dtype))
        outs = []
        for stage in trunk.stages:
            x = stage(x)
            outs.append(x)
        return outs

    def dense_head(self, x: Tensor) -> Tensor:
        """The CLIP head at every location: (B, C_3, h, w) trunk output -> (B, E, h, w).

        trunk.head.norm (LayerNorm2d over channels), then open_clip's ``head`` (Linear or MLP)
        on the channel vector of each location; the global pool is skipped. A (B*Q, C_3, 1, 1)
        map of pooled vectors gives their embeddings (MAFT+'s mask pooling).
        """
        x = self.visual.trunk.head.norm(x.to(self.visual.trunk.head.norm.weight.dtype))
        return self.visual.head(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward_dense(self, images: Tensor) -> DenseOutput:
        """Per-location embeddings at stride 32, with the stage maps as ``levels``."""
        outs = self.stages(images)
        return DenseOutput(feats=self.dense_head(outs[-1]), grid=tuple(outs[-1].shape[-2:]),
                           tokens=[outs[-1]], images=images, levels=tuple(outs))

    def encode_dense(self, images: Tensor) -> Tensor:
        """(B, E, H/32, W/32) joint-space features of CLIP-normalised images."""
        return self.forward_dense(images).feats

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        """Stage maps ``out_indices`` for mmseg/mmdet necks and pixel decoders."""
        outs = self.stages(images)
        return tuple(outs[i] for i in self.out_indices)
