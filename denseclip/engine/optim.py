"""Optimizer construction for models with frozen parts (teachers, frozen CLIP towers)."""
from __future__ import annotations

from mmengine.optim import DefaultOptimWrapperConstructor
from denseclip.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor (``paramwise_cfg``, ``custom_keys``...) that leaves out
    submodules without a trainable parameter, instead of adding each frozen tensor as its own
    parameter group with a "skipped since its requires_grad=False" warning (hundreds for a
    frozen ViT-B teacher)."""

    def add_params(self, params: list[dict], module: nn.Module, prefix: str = '',
                   is_dcn_module: int | float | None = None) -> None:
        if any(p.requires_grad for p in module.parameters()):
            super().add_params(params, module, prefix, is_dcn_module)
