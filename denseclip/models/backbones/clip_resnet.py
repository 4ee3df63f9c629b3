"""CLIP's ModifiedResNet as a dense feature extractor and an mmseg/mmdet backbone.

Dense features follow MaskCLIP (ECCV 2022, arXiv 2112.01071; chongzhou96/MaskCLIP@245d31f
``MaskClipHead``): the attention pool's value and output projections applied to every layer4
location as 1×1 convolutions, without its positional embedding or q/k. Output stride 32.
"""
from __future__ import annotations

import os

import torch.nn.functional as F
from mmengine.model import BaseModule
from open_clip.model import CLIP
from open_clip.modified_resnet import ModifiedResNet
from torch import Tensor, nn

from denseclip.models.backbones.clip_vit import (DenseOutput, check_images, keep_loaded_clip,
                                                 load_clip_model)
from denseclip.registry import MMDET_MODELS, MODELS


def attnpool_values(pool: nn.Module, x: Tensor) -> Tensor:
    """MaskCLIP's dense value path: c_proj(v_proj(x)) at every location of a layer4 map.

    Args:
        pool: the open_clip ``AttentionPool2d`` (``v_proj``, ``c_proj``).
        x: (B, C, h, w) layer4 features, at any stride.

    Returns:
        (B, E, h, w) joint-space features.
    """
    feats = F.linear(F.linear(x.permute(0, 2, 3, 1), pool.v_proj.weight, pool.v_proj.bias),
                     pool.c_proj.weight, pool.c_proj.bias)  # (B, h, w, E)
    return feats.permute(0, 3, 1, 2)


@MODELS.register_module()
@MMDET_MODELS.register_module()
class CLIPResNet(BaseModule):
    """CLIP ResNet: stride-32 dense features and multi-level maps (strides 4, 8, 16, 32).

    Args:
        model: open_clip model name (``'RN50'``...), model-config JSON path, None (inferred
            from ``pretrained``), or an already-built open_clip ``CLIP``.
        pretrained: open_clip tag, local weights file, or None (random weights).
        out_indices: which of layer1..layer4 (0..3) :meth:`forward` returns.
    """

    output_stride = 32

    def __init__(self, model: str | os.PathLike | CLIP | None = 'RN50',
                 pretrained: str | os.PathLike | None = None,
                 out_indices: tuple[int, ...] = (0, 1, 2, 3),
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        clip, self.source = load_clip_model(model, pretrained)
        if not isinstance(clip.visual, ModifiedResNet):
            raise TypeError(f"CLIPResNet: model={model!r} has a {type(clip.visual).__name__} "
                            "image tower; use type='CLIPViT' for ViT CLIPs")
        if any(i not in range(4) for i in out_indices):
            raise ValueError(f'CLIPResNet: out_indices={out_indices}; each must be in 0..3')
        keep_loaded_clip(self, clip)
        self.visual = clip.visual
        self.out_indices = tuple(out_indices)
        self.embed_dim = self.visual.output_dim

    def stages(self, images: Tensor) -> list[Tensor]:
        """Outputs of layer1..layer4: strides 4, 8, 16, 32."""
        check_images(images, self.output_stride, 'CLIPResNet')
        x = self.visual.stem(images.to(self.visual.conv1.weight.dtype))
        outs = []
        for layer in (self.visual.layer1, self.visual.layer2, self.visual.layer3,
                      self.visual.layer4):
            x = layer(x)
            outs.append(x)
        return outs

    def forward_dense(self, images: Tensor) -> DenseOutput:
        """c_proj(v_proj(layer4)) per location, (B, E, H/32, W/32), with layer4 kept."""
        x = self.stages(images)[-1]  # (B, C, h, w)
        return DenseOutput(feats=attnpool_values(self.visual.attnpool, x),
                           grid=tuple(x.shape[-2:]), tokens=[x], images=images)

    def encode_dense(self, images: Tensor) -> Tensor:
        """Dense joint-space features.

        Args:
            images: (B, 3, H, W) CLIP-normalised, H and W divisible by 32.

        Returns:
            (B, E, H/32, W/32): the attention pool's value path at every location.
        """
        return self.forward_dense(images).feats

    def patch_keys(self, dense: DenseOutput) -> Tensor:
        """k_proj(layer4), the keys of MaskCLIP's key smoothing, (B, C, h, w)."""
        pool = self.visual.attnpool
        keys = F.linear(dense.tokens[-1].permute(0, 2, 3, 1), pool.k_proj.weight,
                        pool.k_proj.bias)  # (B, h, w, C)
        return keys.permute(0, 3, 1, 2)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        outs = self.stages(images)
        return tuple(outs[i] for i in self.out_indices)
