"""``build_dense_clip``: a CLIP image tower whose ``encode_dense`` gives patch embeddings."""
from __future__ import annotations

import copy
import os

from open_clip.modified_resnet import ModifiedResNet

from denseclip.clip import load_clip
from denseclip.models.backbones import CLIPResNet, CLIPViT
from denseclip.models.dense import METHODS

# ResNet CLIPs have one dense path (MaskCLIP's v/c projections); these names select it.
RESNET_METHODS = ('vanilla', 'maskclip')


def dense_method_kwargs(method: str, proxy: dict | None = None) -> dict:
    """The :class:`CLIPViT` arguments of dense ``method`` (:data:`METHODS`), a copy.

    Args:
        method: a dense method name.
        proxy: ProxyCLIP's proxy config replacing its default (e.g. ``dict(type='DINOProxy',
            model=..., pretrained='/path')``); refused for any other method.
    """
    if method not in METHODS:
        raise KeyError(f'method={method!r} is not a dense method; known: {sorted(METHODS)}')
    kwargs = copy.deepcopy(METHODS[method])
    if proxy is not None:
        if kwargs.get('dense', {}).get('type') != 'ProxyCLIPAttention':
            raise ValueError(f'proxy= is a ProxyCLIP setting; method={method!r}')
        kwargs['dense']['proxy'] = proxy
    return kwargs


def build_dense_clip(model: str | os.PathLike | None = 'ViT-B-16',
                     pretrained: str | os.PathLike | None = 'openai', method: str = 'vanilla',
                     proxy: dict | None = None, **overrides) -> CLIPViT | CLIPResNet:
    """Load CLIP and wrap its image tower for dense prediction.

    Args:
        model: open_clip model name, model-config JSON path, or None to infer the architecture
            from an OpenAI-format state dict given as ``pretrained``.
        pretrained: open_clip tag, local weights file, or None (random weights).
        method: a key of :data:`denseclip.models.dense.METHODS` (``'vanilla'``, ``'maskclip'``,
            ``'sclip'``, ...).
        proxy: ProxyCLIP's proxy (see :func:`dense_method_kwargs`), as
            ``OpenVocabSegmenter(..., proxy=...)`` takes it.
        **overrides: :class:`CLIPViT` arguments replacing the method's defaults, e.g.
            ``pos_interp='size'`` or ``dense=dict(type='SCLIPAttention')``.

    Returns:
        The module in eval mode; ``encode_dense`` maps (B,3,H,W) to (B,E,H/p,W/p).
    """
    kwargs = dict(dense_method_kwargs(method, proxy), **overrides)  # checks first: no load
    clip, source = load_clip(model, pretrained)
    if isinstance(clip.visual, ModifiedResNet):
        if method not in RESNET_METHODS:
            raise ValueError(f'method={method!r} modifies ViT attention; a ResNet CLIP supports '
                             f'{RESNET_METHODS}')
        backbone = CLIPResNet(model=clip, **overrides)
    else:
        backbone = CLIPViT(model=clip, **kwargs)
    backbone.source = source
    return backbone.eval()
