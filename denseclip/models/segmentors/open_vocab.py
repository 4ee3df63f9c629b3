"""The training-free open-vocabulary segmentor shared by every dense CLIP method.

Window scoring (:meth:`OpenVocabSegmentor.score_windows`; the slide grid, merge and
post-processing are :class:`~denseclip.models.segmentors.base.SlideSegmentor`'s)::

    forward_dense [autocast if dtype != 'fp32'] -> DenseOutput
      ├─ feature_refiner(feats, dense, backbone)      (CLIP-DINOiser)
      ├─ float32 cosine with the cached classifier (b, Q, h', w')
      ├─ patch_refiner(logits, dense, backbone)       (CLIPtrase, KSPD)
      └─ window_softmax: softmax(logit_scale·cos) [+ FOUND override]

Only the image encoder runs in reduced precision (``dtype``, under autocast); cosine,
upsampling, merging and softmax stay float32. The weights autocast would cast on every forward
are cast once and kept (:func:`autocast_weights`).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmseg.structures import SegDataSample
from torch import Tensor, nn
from torch.func import functional_call

from denseclip.models.backbones import DenseOutput
from denseclip.models.refiner_protocols import FeatureRefiner, PatchRefiner, check_refiner
from denseclip.models.text import (OpenCLIPTextEncoder, TextClassifier, Vocabulary,
                                   build_text_classifier)
from denseclip.registry import MODELS

from .base import SlideSegmentor

logger = logging.getLogger(__name__)


def autocast_weights(backbone: nn.Module) -> dict[str, Tensor]:
    """The image path's weights that autocast runs in low precision, by parameter name.

    Weights and biases of ``nn.Linear`` / ``nn.Conv2d`` and the in-projections of
    ``nn.MultiheadAttention``: autocast casts them on every call, and cannot keep the casts
    under ``inference_mode``. A backbone registers its image tower only (the text tower is the
    segmentor's ``text_encoder``).
    """
    names = {nn.MultiheadAttention: ('in_proj_weight', 'in_proj_bias')}
    out = {}
    for prefix, module in backbone.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            attrs = ('weight', 'bias')
        else:
            attrs = names.get(type(module), ())
        for attr in attrs:
            value = getattr(module, attr, None)
            if isinstance(value, nn.Parameter) and value.is_floating_point():
                out[f'{prefix}.{attr}' if prefix else attr] = value
    return out


class _DenseForward(nn.Module):
    """``backbone.forward_dense`` as ``forward``, for ``functional_call``."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, crops: Tensor) -> DenseOutput:
        return self.backbone.forward_dense(crops)


@MODELS.register_module()
class OpenVocabSegmentor(SlideSegmentor):
    """Training-free open-vocabulary segmentation with any dense CLIP backbone.

    Args:
        backbone: a ``CLIPViT``/``CLIPResNet`` config (its ``dense`` picks the method).
        vocabulary: a class-name file (one class a line, synonyms split by ``name_sep``), a
            list of classes (strings or lists of synonyms), or None (set per call through
            :meth:`set_vocabulary`, as the Python API does).
        name_sep: synonym separator of name files: ``', '`` (SCLIP, NACLIP), ``','``
            (ClearCLIP), ``'; '`` (ProxyCLIP).
        templates: prompt template set name or list.
        logit_scale: temperature of the softmax over queries.
        feature_refiner: a :class:`~denseclip.models.refiner_protocols.FeatureRefiner`
            config, applied to each window batch's dense features before the cosine,
            ``feature_refiner(feats, dense, backbone)`` with the backbone's
            :class:`DenseOutput`, e.g. ``dict(type='CLIPDINOiserRefiner', ...)``. With
            ``window_softmax``, its ``override_background(probs, dense, backbone)`` edits the
            window probabilities (CLIP-DINOiser's FOUND override).
        patch_refiner: a :class:`~denseclip.models.refiner_protocols.PatchRefiner` config,
            applied to each window batch's patch-grid cosine logits,
            ``patch_refiner(logits, dense, backbone)``; it may return them at the window's
            size. E.g. ``dict(type='CLIPtraseRegionRefiner')``, ``dict(type='KSPDRefiner')``
            (MaskCLIP+). Its ``set_classifier(classifier)`` is called whenever the vocabulary
            changes.
        window_softmax: average each window's class probabilities softmax(logit_scale·cos)
            instead of its raw cosine (CLIP-DINOiser runs mmseg's slide inference over softmax
            outputs); :meth:`postprocess` then takes the merged scores as probabilities.
        **kwargs: the slide, precision, post-processing and refiner settings of
            :class:`SlideSegmentor` (``slide_crop``, ``slide_stride``, ``pad_to_patch``,
            ``window_batch``, ``dtype``, ``prob_thd``, ``area_thd``, ``refiner``...).

    The window scores are raw cosine similarities of L2-normalised dense features with the
    cached classifier's unit text embeddings. Only the image encoder runs in reduced precision
    (``dtype``, under autocast); cosine, upsampling, merging and softmax stay float32. The
    weights autocast would cast on every forward are cast once and kept
    (:func:`autocast_weights`).
    """

    def __init__(self, backbone: dict, vocabulary: str | Sequence | None = None,
                 name_sep: str = ', ', templates: str | Sequence[str] = 'openai_imagenet',
                 logit_scale: float = 40.0, feature_refiner: dict | None = None,
                 patch_refiner: dict | None = None, window_softmax: bool = False,
                 **kwargs) -> None:
        super().__init__(logit_scale=logit_scale, **kwargs)
        self.backbone = MODELS.build(backbone)
        # The frozen text tower of the backbone's CLIP (shared, not copied).
        self.text_encoder = OpenCLIPTextEncoder(clip=self.backbone.clip,
                                                source=self.backbone.source)
        self.feature_refiner = check_refiner(
            MODELS.build(feature_refiner) if feature_refiner is not None else None,
            FeatureRefiner, 'feature_refiner')
        self.patch_refiner = check_refiner(
            MODELS.build(patch_refiner) if patch_refiner is not None else None,
            PatchRefiner, 'patch_refiner')
        self.templates = templates
        self.name_sep = name_sep
        self.window_softmax = window_softmax
        self._cast_cache: tuple[tuple, dict[str, Tensor]] | None = None
        self.classifier: TextClassifier | None = None
        self._classifiers: dict[tuple, TextClassifier] = {}
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # ----------------------------------------------------------------- text side
    def set_vocabulary(self, vocabulary: str | os.PathLike | Sequence | Vocabulary) -> None:
        """Build (or fetch from the memory and disk caches) the text classifier."""
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = Vocabulary.from_file(vocabulary, sep=self.name_sep)
        elif not isinstance(vocabulary, Vocabulary):
            vocabulary = Vocabulary.from_list(vocabulary)
        key = vocabulary.classes
        if key not in self._classifiers:
            # the disk cache key: model config (activation included), tokenizer, weights
            self._classifiers[key] = build_text_classifier(
                self.text_encoder, None, vocabulary, self.templates,
                model_id=self.backbone.source.identity)
            self.warn_vocabulary_memory(len(vocabulary.queries))
        self.classifier = self._classifiers[key]
        if self.patch_refiner is not None:
            self.patch_refiner.set_classifier(self.classifier)

    def text_for(self, data_samples=None) -> tuple[Vocabulary, Tensor]:
        """The classifier's vocabulary and (Q, D) unit embeddings (:meth:`set_vocabulary`)."""
        classifier = self._require_classifier()
        return classifier.vocabulary, classifier.embeddings

    @property
    def num_classes(self) -> int:
        return self._require_classifier().num_classes

    @property
    def num_queries(self) -> int:
        """Q: text queries (class names and synonyms) of the current vocabulary."""
        return self._require_classifier().embeddings.shape[0]

    def _require_classifier(self) -> TextClassifier:
        if self.classifier is None:
            raise RuntimeError('OpenVocabSegmentor: no vocabulary; pass vocabulary= in the '
                               'config or call set_vocabulary(classes)')
        return self.classifier

    # ----------------------------------------------------------------- image side
    def _encode(self, crops: Tensor) -> DenseOutput:
        """The backbone's :class:`DenseOutput`, autocast per ``dtype``; ``feats`` float32."""
        device = crops.device.type
        amp_dtype = self.amp_dtype(device)
        encoder = _DenseForward(self.backbone)
        if amp_dtype is None:
            dense = encoder(crops)
        else:
            with torch.autocast(device, dtype=amp_dtype):
                # the casts autocast would make, made once (_cast_weights). No weight tying:
                # a module may be reachable by several names, and tie_weights=True then
                # restores some of them to the cast copy.
                dense = functional_call(encoder, self._cast_weights(amp_dtype), (crops,),
                                        tie_weights=False)
            dense.feats = dense.feats.float()
        return dense

    def _cast_weights(self, dtype: torch.dtype) -> dict[str, Tensor]:
        """``dtype`` copies of :func:`autocast_weights`, kept until a weight changes.

        Autocast would re-cast them for every window batch (under ``inference_mode`` it keeps
        no cast cache): 86M weights per ViT-B/16 forward. Having them in ``dtype`` also keeps
        ``nn.MultiheadAttention`` on its fused path, whose input and weight dtypes must match;
        its unfused path under autocast made bf16 ViT-B/16 4x slower than float32 (its
        transposed input and a cast weight that needs no grad make ``matmul`` copy the weight
        once per token row, as profiled with tools/benchmark.py).
        The cache key holds each weight's storage and version counter, so loading weights,
        editing them in place or moving the model re-casts. Costs a ``dtype`` copy of the
        image tower's matmul weights (163 MiB for ViT-B/16 in bf16, README Performance).
        """
        sources = autocast_weights(self.backbone)
        key = (dtype, tuple((n, p.data_ptr(), p._version) for n, p in sources.items()))
        if self._cast_cache is None or self._cast_cache[0] != key:
            with torch.inference_mode(False), torch.no_grad():  # usable outside inference mode
                casts = {f'backbone.{n}': p.detach().to(dtype) for n, p in sources.items()}
            self._cast_cache = (key, casts)
        return self._cast_cache[1]

    def score_windows(self, crops: Tensor, text: Tensor) -> Tensor:
        """(b, Q, h', w') cosine of each window's dense features with the (Q, D) unit text
        embeddings, refined; probabilities with ``window_softmax``."""
        dense = self._encode(crops)
        feats = dense.feats
        if self.feature_refiner is not None:
            feats = self.feature_refiner(feats, dense, self.backbone)
        feats = F.normalize(feats, dim=1)
        # contiguous: for b > 1 einsum returns channels-last strides, and bilinear upsampling
        # of those rounds differently from a one-window loop's
        logits = torch.einsum('behw,qe->bqhw', feats, text.float()).contiguous()  # (b,Q,h',w')
        if self.patch_refiner is not None:
            logits = self.patch_refiner(logits, dense, self.backbone)
        if self.window_softmax:
            logits = torch.softmax(self.logit_scale * logits, dim=1)
            if self.feature_refiner is not None:
                logits = self.feature_refiner.override_background(logits, dense, self.backbone)
        return logits

    def probabilities(self, logits: Tensor) -> Tensor:
        """softmax(logit_scale · cos) over queries, or the merged window probabilities as they
        are with ``window_softmax``."""
        return logits.float() if self.window_softmax else super().probabilities(logits)

    def loss(self, inputs: Tensor, data_samples: Sequence[SegDataSample]) -> dict:
        raise RuntimeError('OpenVocabSegmentor is training-free and has no loss; train a '
                           'trained method (e.g. CLIP-DINOiser, DenseCLIP) with tools/train.py')
