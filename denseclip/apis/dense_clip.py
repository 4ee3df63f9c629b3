"""``build_dense_clip``: a CLIP image tower whose ``encode_dense`` gives patch embeddings."""
from __future__ import annotations

import os
from pathlib import Path

from mmengine.config import Config
from open_clip.modified_resnet import ModifiedResNet

from denseclip.clip import load_clip
from denseclip.models.backbones import CLIPConvNeXt, CLIPResNet, CLIPViT
from denseclip.models.backbones.clip_convnext import is_convnext_tower

# ResNet CLIPs have one dense path (MaskCLIP's v/c projections); these names select it.
RESNET_METHODS = ('vanilla', 'maskclip')
# ConvNeXt CLIPs have one dense path (the CLIP head per location, FC-CLIP's): no attention.
CONVNEXT_METHODS = ('vanilla',)
# Each method's harness config (configs/_base_/models/<method>_harness.py) is the one source
# of its settings: the benchmark configs inherit it, the Python API and demos read it.
HARNESSES = Path(__file__).resolve().parents[2] / 'configs' / '_base_' / 'models'
# Dense attentions whose ``proxy=`` (a second encoder's config) the API may replace.
PROXY_ATTENTIONS = ('ProxyCLIPAttention', 'CorrCLIPAttention', 'TridentAttention')


def known_methods() -> list[str]:
    """The ``method=`` names of the dense segmentation methods: every ``<method>_harness.py``
    (phrase localization and TextSpan have model bases of their own, not harnesses)."""
    return sorted(p.name[:-len('_harness.py')] for p in HARNESSES.glob('*_harness.py'))


def method_config(method: str) -> Config:
    """The harness config of ``method`` (its ``model`` and the API's ``short_side``)."""
    path = HARNESSES / f'{method}_harness.py'
    if not path.is_file():
        if not HARNESSES.is_dir():
            raise FileNotFoundError(
                f'{HARNESSES} not found: the methods\' settings are read from the repository\'s '
                'configs/; install denseclip from its repository (pip install -e .)')
        raise KeyError(f'method={method!r} is not a dense method; known: {known_methods()}')
    return Config.fromfile(str(path))


def dense_method_kwargs(method: str, proxy: dict | None = None,
                        harness: Config | None = None) -> dict:
    """The :class:`CLIPViT` arguments of dense ``method``: its harness backbone's last-block
    attention and position-embedding interpolation, a copy.

    Args:
        method: a dense method name (:func:`known_methods`).
        proxy: ProxyCLIP's (or CorrCLIP's, Trident's) proxy config replacing its default (e.g.
            ``dict(type='DINOProxy', model=..., pretrained='/path')``); refused for any other
            method.
        harness: ``method_config(method)``, if the caller has read it already.
    """
    harness = method_config(method) if harness is None else harness
    backbone = harness.model.backbone.to_dict()
    kwargs = {k: v for k, v in backbone.items() if k not in ('type', 'model', 'pretrained')}
    if proxy is not None:
        if kwargs.get('dense', {}).get('type') not in PROXY_ATTENTIONS:
            raise ValueError('proxy= is a setting of ProxyCLIP, CorrCLIP and Trident; '
                             f'method={method!r}')
        kwargs['dense']['proxy'] = proxy
    return kwargs


def build_dense_clip(model: str | os.PathLike | None = 'ViT-B-16',
                     pretrained: str | os.PathLike | None = 'openai', method: str = 'vanilla',
                     proxy: dict | None = None,
                     **overrides) -> CLIPViT | CLIPResNet | CLIPConvNeXt:
    """Load CLIP and wrap its image tower for dense prediction.

    Args:
        model: open_clip model name, model-config JSON path, or None to infer the architecture
            from an OpenAI-format state dict given as ``pretrained``.
        pretrained: open_clip tag, local weights file, or None (random weights).
        method: a dense method (:func:`known_methods`: ``'vanilla'``, ``'maskclip'``,
            ``'sclip'``, ...), whose harness config gives the backbone's settings.
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
    elif is_convnext_tower(clip.visual):
        if method not in CONVNEXT_METHODS:
            raise ValueError(f'method={method!r} modifies ViT attention; a ConvNeXt CLIP '
                             f'supports {CONVNEXT_METHODS} (its head at every location)')
        backbone = CLIPConvNeXt(model=clip, **overrides)
    else:
        backbone = CLIPViT(model=clip, **kwargs)
    backbone.source = source
    return backbone.eval()
