"""``OpenVocabSegmenter``: segment a picture with any vocabulary in three lines.

    seg = OpenVocabSegmenter(method='sclip', model='ViT-B-16', pretrained='openai')
    r = seg('street.jpg', classes=['road', 'car', ['person', 'pedestrian']])
    r.labels, r.probs, r.overlay()
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from mmengine.config import Config

from denseclip.models.segmentors import CLIP_MEAN, CLIP_STD
from denseclip.models.text import Vocabulary
from denseclip.registry import MODELS
from denseclip.utils.image import load_image

from .dense_clip import dense_method_kwargs, method_config

def _palette(num_classes: int) -> np.ndarray:
    """Distinct colours (K, 3) uint8, fixed for a given K."""
    rng = np.random.default_rng(12345)
    colours = rng.integers(40, 256, size=(max(num_classes, 1), 3), dtype=np.uint8)
    return colours[:num_classes]


@dataclass
class SegmentationResult:
    """One segmented image.

    Attributes:
        image: (H, W, 3) uint8 RGB input.
        classes: the K class names (first name of each class).
        labels: (H, W) int64 index into ``classes``.
        probs: (K, H, W) float32 class probabilities after the max over synonyms, as the
            method's segmentor gives them: renormalised to sum to 1 per pixel where the method
            does so (NACLIP, ``renormalize=True``), else at most 1.
    """

    image: np.ndarray
    classes: list[str]
    labels: np.ndarray
    probs: np.ndarray

    def areas(self) -> dict[str, float]:
        """Fraction of the image each predicted class covers, largest first."""
        counts = np.bincount(self.labels.ravel(), minlength=len(self.classes))
        order = np.argsort(-counts)
        return {self.classes[i]: counts[i] / self.labels.size for i in order if counts[i]}

    def overlay(self, alpha: float = 0.5) -> np.ndarray:
        """(H, W, 3) uint8 RGB: label colours blended on the image, a legend top-left."""
        palette = _palette(len(self.classes))
        out = (self.image * (1 - alpha) + palette[self.labels] * alpha).astype(np.uint8)
        font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1
        y = 4
        for name in self.areas():
            (tw, th), base = cv2.getTextSize(name, font, scale, thick)
            colour = tuple(int(c) for c in palette[self.classes.index(name)])
            cv2.rectangle(out, (2, y), (14 + tw + 4, y + th + base + 2), (0, 0, 0), -1)
            cv2.rectangle(out, (4, y + 2), (12, y + th + 2), colour, -1)
            cv2.putText(out, name, (16, y + th + 1), font, scale, (255, 255, 255), thick,
                        cv2.LINE_AA)
            y += th + base + 4
        return out


class OpenVocabSegmenter:
    """Python API over :class:`OpenVocabSegmentor` (DESIGN.md §4).

    Args:
        method: a dense method name (``'sclip'``, ``'naclip'``, ...; :func:`known_methods`):
            its harness config ``configs/_base_/models/<method>_harness.py`` gives every
            default, as it does to the method's benchmark configs.
        model: open_clip model name, model-config JSON, or None (inferred from the file).
        pretrained: open_clip tag, weights file, or None (random weights).
        device: ``'cpu'`` or ``'cuda'``.
        **settings: segmentor settings overriding the method's defaults (``short_side``,
            ``slide_crop``, ``logit_scale``, ``prob_thd``, ...), and ``proxy=`` (ProxyCLIP's
            proxy config, e.g. ``dict(type='DINOProxy', model=..., pretrained='/path')``) and
            ``heads=`` (CLIP-DINOiser's trained heads file, required for that method).
    """

    def __init__(self, method: str = 'sclip', model: str | os.PathLike | None = 'ViT-B-16',
                 pretrained: str | os.PathLike | None = 'openai', device: str = 'cpu',
                 **settings) -> None:
        harness = method_config(method)  # the settings the method's benchmark configs inherit
        cfg = harness.model.to_dict()
        cfg.pop('vocabulary', None)
        cfg.update(settings)
        short_side = cfg.pop('short_side', harness.get('short_side'))
        cfg['backbone'] = dict(type='CLIPViT', model=model, pretrained=pretrained,
                               **dense_method_kwargs(method, cfg.pop('proxy', None), harness))
        heads = cfg.pop('heads', None)
        refiner = cfg.get('feature_refiner') or {}
        if refiner.get('type') == 'CLIPDINOiserRefiner':
            if heads is None:
                raise ValueError("method='clip_dinoiser' needs its trained heads: pass "
                                 "heads='/path/to/last.pt' (the released checkpoints/last.pt "
                                 'of wysoczanska/clip_dinoiser, or clip_dinoiser_heads.safetensors '
                                 'from tools/train.py)')
            # the heads' sizes are read from the file (any CLIP width)
            refiner.update(checkpoint=os.fspath(heads), in_channels=None, proj_channels=None)
        elif heads is not None:
            raise ValueError(f'heads= is a CLIP-DINOiser setting; method={method!r}')
        if cfg.pop('backbone_type', None) == 'CLIPResNet':
            cfg['backbone'] = dict(type='CLIPResNet', model=model, pretrained=pretrained)
        self._init(MODELS.build(cfg), short_side, device)

    def _init(self, segmentor, short_side: int | None, device: str) -> None:
        self.segmentor = segmentor.to(device).eval()
        self.short_side = short_side
        self.device = device

    @classmethod
    def from_config(cls, config: str | os.PathLike, pretrained: str | os.PathLike | None = None,
                    device: str = 'cpu', cfg_options: dict | None = None
                    ) -> OpenVocabSegmenter:
        """Build from a ``configs/`` file; ``pretrained`` replaces the backbone's weights."""
        if not os.path.isfile(config):
            raise FileNotFoundError(f'config not found: {config}')
        cfg = Config.fromfile(config)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        if pretrained is not None:
            cfg.model.backbone.pretrained = os.fspath(pretrained)
        self = cls.__new__(cls)
        self._init(MODELS.build(cfg.model), _short_side(cfg), device)
        return self

    def __call__(self, image: str | os.PathLike | np.ndarray,
                 classes: Sequence | Vocabulary | None = None) -> SegmentationResult:
        """Segment ``image`` into ``classes`` (each a name or a list of synonyms; a name may
        belong to one class only, :meth:`Vocabulary.require_distinct_names`)."""
        rgb = load_image(image)
        if classes is not None:
            if not isinstance(classes, Vocabulary):  # typed by the user: the demos' rule
                classes = Vocabulary.from_list(classes).require_distinct_names()
            self.segmentor.set_vocabulary(classes)
        H, W = rgb.shape[:2]
        resized = rgb
        if self.short_side:
            # mmseg Resize(scale=(2048, S), keep_ratio=True), as the benchmark configs.
            scale = min(2048 / max(H, W), self.short_side / min(H, W))
            size = (int(W * scale + 0.5), int(H * scale + 0.5))
            resized = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
        tensor = torch.from_numpy(resized).permute(2, 0, 1).float()[None].to(self.device)
        mean = torch.tensor(CLIP_MEAN, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=self.device).view(1, 3, 1, 1)
        with torch.inference_mode():
            logits = self.segmentor.inference((tensor - mean) / std, (H, W))
            probs, labels = self.segmentor.postprocess(logits[0])
        return SegmentationResult(image=rgb, classes=self.segmentor.classifier.class_names,
                                  labels=labels.cpu().numpy().astype(np.int64),
                                  probs=probs.float().cpu().numpy())


def _short_side(cfg: Config) -> int | None:
    """S of the config's test-pipeline ``Resize(scale=(2048, S), keep_ratio=True)``."""
    for step in cfg.get('test_pipeline', []):
        if step.get('type') == 'Resize' and step.get('keep_ratio', False):
            return int(min(step['scale']))
    return None
