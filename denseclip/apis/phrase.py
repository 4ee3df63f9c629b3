"""``PhraseLocalizer``: find the box a phrase describes, with no training.

    loc = PhraseLocalizer(model='ViT-B-16', pretrained='openai')          # region tokens
    r = loc('street.jpg', 'the man in a red shirt')
    r.box, r.heatmap, r.score, r.overlay()

Adapting CLIP for phrase localization (arXiv 2204.03647): :mod:`denseclip.models.grounding`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np
from mmengine.config import Config

from denseclip.models.grounding import PhraseGroundingModel
from denseclip.registry import MODELS
from denseclip.utils.image import load_image

__all__ = ['PhraseLocalizer', 'PhraseResult']

_REPO_CONFIGS = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', '_base_',
                             'models')
# method -> (model base config, backbone type)
_METHODS = {'region_tokens': ('grounding_regiontoken.py', 'CLIPViT'),
            'dilated_resnet': ('grounding_dilated-resnet.py', 'CLIPResNet')}


@dataclass
class PhraseResult:
    """One localised phrase.

    Attributes:
        image: (H, W, 3) uint8 RGB input.
        phrase: the phrase.
        box: (4,) float32 ``(x1, y1, x2, y2)`` in the image's pixels.
        heatmap: (H, W) float32 heat map at the image's size (bilinear from 224 x 224),
            largest value 1.
        score: the best cosine between the phrase and a region (ViT) or a location.
        point: ``(x, y)`` of the heat map's maximum.
    """

    image: np.ndarray
    phrase: str
    box: np.ndarray
    heatmap: np.ndarray
    score: float
    point: tuple[float, float]

    def overlay(self, alpha: float = 0.5) -> np.ndarray:
        """(H, W, 3) uint8 RGB: the heat map (jet) blended on the image, the box in green and
        the phrase with its score above it."""
        heat = (self.heatmap / max(float(self.heatmap.max()), 1e-8) * 255).astype(np.uint8)
        colour = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
        out = (self.image * (1 - alpha) + colour * alpha).astype(np.uint8)
        x1, y1, x2, y2 = (int(round(c)) for c in self.box)
        thick = max(1, round(max(out.shape[:2]) / 200))
        cv2.rectangle(out, (x1, y1), (x2, y2), (0, 255, 0), thick)
        text = f'{self.phrase} {self.score:.2f}'
        font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45
        (tw, th), base = cv2.getTextSize(text, font, scale, 1)
        ty = max(th + base, y1 - 2)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 4, ty), (0, 0, 0), -1)
        cv2.putText(out, text, (x1 + 2, ty - base), font, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
        return out


class PhraseLocalizer:
    """Python API over :class:`~denseclip.models.grounding.PhraseGroundingModel`.

    Args:
        method: ``'region_tokens'`` (a ViT CLIP) or ``'dilated_resnet'`` (a ResNet CLIP); the
            base ``configs/_base_/models/grounding_<regiontoken|dilated-resnet>.py`` gives
            every default (the released ViT-B/16 and RN50 Flickr30k settings).
        model: open_clip model name, model-config JSON, or None (inferred from the file).
        pretrained: open_clip tag, weights file, or None (random weights).
        device: ``'cpu'`` or ``'cuda'``.
        **settings: model settings overriding the base config: ``alpha``, ``input_size``,
            ``downsample``, and ``heatmap=dict(temperature=..., n_segments=...)`` (merged).
    """

    def __init__(self, method: str = 'region_tokens',
                 model: str | os.PathLike | None = 'ViT-B-16',
                 pretrained: str | os.PathLike | None = 'openai', device: str = 'cpu',
                 **settings) -> None:
        if method not in _METHODS:
            raise ValueError(f'PhraseLocalizer: method={method!r}; known: {sorted(_METHODS)}')
        harness, backbone = _METHODS[method]
        cfg = Config.fromfile(os.path.join(_REPO_CONFIGS, harness)).model.to_dict()
        heatmap = settings.pop('heatmap', None) or {}
        cfg['heatmap'].update(heatmap)
        cfg.update(settings)
        cfg['backbone'] = dict(cfg['backbone'], type=backbone, model=model,
                               pretrained=pretrained)
        self._init(MODELS.build(cfg), device)

    def _init(self, model: PhraseGroundingModel, device: str) -> None:
        if not isinstance(model, PhraseGroundingModel):
            raise TypeError(f'PhraseLocalizer: the config builds a {type(model).__name__}; '
                            'expected a PhraseGroundingModel (configs/grounding/)')
        self.model = model.to(device).eval()
        self.device = device

    @classmethod
    def from_config(cls, config: str | os.PathLike, pretrained: str | os.PathLike | None = None,
                    device: str = 'cpu') -> PhraseLocalizer:
        """Build from a ``configs/grounding/`` file; ``pretrained`` replaces its weights."""
        if not os.path.isfile(config):
            raise FileNotFoundError(f'config not found: {config}')
        cfg = Config.fromfile(config)
        if pretrained is not None:
            cfg.model.backbone.pretrained = os.fspath(pretrained)
        self = cls.__new__(cls)
        self._init(MODELS.build(cfg.model), device)
        return self

    def __call__(self, image: str | os.PathLike | np.ndarray, phrase: str) -> PhraseResult:
        """Localise ``phrase`` in ``image`` (a path or an RGB array).

        Raises:
            ValueError: an empty phrase, a phrase longer than the text context, or an image
                smaller than one patch.
        """
        rgb = load_image(image)
        out = self.model.localize(rgb, phrase)
        H, W = rgb.shape[:2]
        heat = cv2.resize(out.heatmap, (W, H), interpolation=cv2.INTER_LINEAR)
        heat = heat / max(float(heat.max()), 1e-8)
        return PhraseResult(image=rgb, phrase=phrase, box=out.box, heatmap=heat,
                            score=out.score, point=out.point)
