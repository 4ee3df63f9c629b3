"""The registries denseclip registers into.

Everything is registered in MMSegmentation's registries, so a plain mmseg config with
``custom_imports=dict(imports=['denseclip'])`` finds our modules under ``default_scope='mmseg'``.
Backbones are registered in MMDetection's ``MODELS`` as well, for detector configs.
"""
from mmdet.registry import MODELS as MMDET_MODELS
from mmseg.registry import (DATASETS, HOOKS, METRICS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS,
                            RUNNERS, TRANSFORMS)

__all__ = ['MODELS', 'MMDET_MODELS', 'DATASETS', 'METRICS', 'TRANSFORMS', 'HOOKS', 'RUNNERS',
           'OPTIM_WRAPPER_CONSTRUCTORS']
