"""The segmentor of trained open-vocabulary methods: backbone, text side and a decode head.

Call graph (mmseg ``BaseSegmentor`` contract; the head protocol is
:class:`~denseclip.models.heads.OpenVocabHead`)::

    loss(inputs, data_samples)
      ├─ text_for(data_samples): vocabulary -> prompt(text_encoder, names) -> (K, P, D), grads
      ├─ backbone.forward_dense(inputs) -> DenseOutput (levels, z, g)
      └─ decode_head.loss(dense, text, data_samples) -> losses
    predict(inputs, data_samples)                      (SlideSegmentor: windows, merge, softmax)
      └─ per window batch: score_windows(crops, text) = decode_head.predict(dense, text)

The vocabulary is an input: a sample's ``metainfo['classes']`` when the pipeline packs one,
else ``vocabulary`` in training and ``test_vocabulary`` at test time. Test-time text embeddings
are cached per vocabulary until a text-side weight changes.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from mmseg.structures import SegDataSample
from torch import Tensor

from denseclip.models.finetune import Finetune, finetune_clip
from denseclip.models.text import OpenCLIPTextEncoder, Vocabulary, build_text_side
from denseclip.registry import MODELS

from .base import SlideSegmentor

VocabularySpec = str | os.PathLike | Sequence | Vocabulary


@MODELS.register_module()
class OpenVocabEncoderDecoder(SlideSegmentor):
    """Trained open-vocabulary segmentation (DenseCLIP, and every trained head after it).

    Args:
        backbone: an image backbone with ``forward_dense`` (e.g. ``CLIPResNetWithAttention``,
            ``CLIPVisionTransformer``); its CLIP's text tower becomes the text encoder.
        decode_head: an :class:`~denseclip.models.heads.OpenVocabHead` config.
        prompt: a prompt learner config (``ContextPrompt``, ``TemplatePrompt``); its ``width``
            is the text encoder's unless given.
        vocabulary: the training classes: a name file (one class a line, synonyms split by
            ``name_sep``) or a list. Training needs one name per class.
        test_vocabulary: the classes at test time (default: ``vocabulary``).
        text_encoder: :class:`OpenCLIPTextEncoder` settings (``context_length``, ``frozen``);
            ``model``/``pretrained`` here load another CLIP's text tower instead.
        name_sep: synonym separator of name files.
        synonyms: prompt every name of a class (a class scores the max over them); False
            prompts only each class's first name (CAT-Seg).
        extra_names: names prompted after the vocabulary's, whose embeddings the head gets as
            the text's last rows: MTA-CLIP's ``('none',)``, the no-object class its
            ``train.py`` appends to the class names.
        clip_finetune: which weights of both CLIP towers train, as
            :func:`~denseclip.models.finetune.finetune_clip` (``'attention_qv'``: CAT-Seg's
            query and value projections only); None leaves the backbone and text encoder as
            their own configs set them.
        **kwargs: :class:`SlideSegmentor`'s slide, precision and post-processing settings.
    """

    def __init__(self, backbone: dict, decode_head: dict, prompt: dict,
                 vocabulary: VocabularySpec, test_vocabulary: VocabularySpec | None = None,
                 text_encoder: dict | None = None, name_sep: str = ', ', synonyms: bool = True,
                 clip_finetune: Finetune | None = None, extra_names: Sequence[str] = (),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.backbone = MODELS.build(backbone)
        self.text_encoder: OpenCLIPTextEncoder
        self.text_encoder, self.prompt = build_text_side(self.backbone, text_encoder, prompt)
        self.decode_head = MODELS.build(decode_head)
        if clip_finetune is not None:
            finetune_clip(self.backbone.visual, clip_finetune)
            finetune_clip(self.text_encoder, clip_finetune)
        self.name_sep = name_sep
        self.synonyms = synonyms
        if isinstance(extra_names, str):
            raise ValueError(f'{type(self).__name__}: extra_names={extra_names!r} is a string; '
                             f'give a list of names, e.g. [{extra_names!r}]')
        self.extra_names = tuple(extra_names)
        self.vocabulary = self._as_vocabulary(vocabulary)
        self.test_vocabulary = (self.vocabulary if test_vocabulary is None
                                else self._as_vocabulary(test_vocabulary))
        self._text_cache: tuple[tuple, Tensor] | None = None
        self._vocabulary: Vocabulary | None = None

    # ----------------------------------------------------------------- text side
    def _as_vocabulary(self, spec: VocabularySpec) -> Vocabulary:
        if isinstance(spec, Vocabulary):
            return spec
        if isinstance(spec, (str, os.PathLike)):
            return Vocabulary.from_file(spec, sep=self.name_sep)
        return Vocabulary.from_list(spec)

    def query_names(self, vocabulary: Vocabulary) -> list[str]:
        """The names prompted: every name of every class, or each class's first name."""
        return vocabulary.queries if self.synonyms else vocabulary.class_names

    def encode_text(self, vocabulary: Vocabulary) -> Tensor:
        """(Q + E, P, D) embeddings of every query name, then the E ``extra_names``, through
        the prompt learner."""
        return self.prompt(self.text_encoder, [*self.query_names(vocabulary), *self.extra_names])

    def text_for(self, data_samples: Sequence[SegDataSample] | None = None
                 ) -> tuple[Vocabulary, Tensor]:
        """The batch's vocabulary (see the module docstring) and its text embeddings: with
        gradients in training, cached under no grad at test time."""
        vocabulary = self.test_vocabulary if not self.training else self.vocabulary
        if data_samples:
            found = {tuple(map(str, s.metainfo['classes'])) for s in data_samples
                     if 'classes' in s.metainfo}
            if len(found) > 1:
                raise ValueError(f'{type(self).__name__}: the samples of one batch carry '
                                 f'{len(found)} different vocabularies; batch them apart')
            if found:
                vocabulary = Vocabulary.from_list(list(found.pop()))
        self._vocabulary = vocabulary  # the query_to_class of score_windows (head_kwargs)
        if self.training:
            return vocabulary, self.encode_text(vocabulary)
        weights = tuple(p._version for p in (*self.prompt.parameters(),
                                             *self.text_encoder.parameters()))
        key = (vocabulary.classes, weights, str(self.text_encoder.device))
        if self._text_cache is None or self._text_cache[0] != key:
            if self._text_cache is None or self._text_cache[0][0] != key[0]:
                self.warn_vocabulary_memory(len(self.query_names(vocabulary)))
            with torch.no_grad():
                self._text_cache = (key, self.encode_text(vocabulary))
        return vocabulary, self._text_cache[1]

    def head_kwargs(self, vocabulary: Vocabulary) -> dict:
        """``query_to_class`` for a head that merges synonyms itself
        (:attr:`~denseclip.models.heads.OpenVocabHead.merges_synonyms`, e.g. MAFT+'s max over
        a class's names before the softmax); {} otherwise."""
        if not (self.synonyms and getattr(self.decode_head, 'merges_synonyms', False)):
            return {}
        if self.extra_names:
            raise ValueError(f'{type(self).__name__}: extra_names={self.extra_names} with a head '
                             'that merges synonyms itself; the extra rows have no class')
        return dict(query_to_class=vocabulary.query_to_class)

    # ----------------------------------------------------------------- training
    def loss(self, inputs: Tensor, data_samples: Sequence[SegDataSample]) -> dict[str, Tensor]:
        """The head's losses for a batch whose labels index the training vocabulary."""
        vocabulary, text = self.text_for(data_samples)
        extra = self.head_kwargs(vocabulary)
        if not extra and vocabulary.num_classes != len(self.query_names(vocabulary)):
            raise ValueError(f'{type(self).__name__}: training needs one name per class; the '
                             f'vocabulary has {len(vocabulary.queries)} names for '
                             f'{vocabulary.num_classes} classes')
        labels = torch.stack([s.gt_sem_seg.data for s in data_samples])
        ignore = getattr(self.decode_head, 'ignore_index', 255)
        bad = labels[(labels != ignore) & (labels >= vocabulary.num_classes)]
        if bad.numel():
            raise ValueError(f'{type(self).__name__}: label {int(bad.max())} in a training '
                             f'batch, but the vocabulary has {vocabulary.num_classes} classes '
                             f'({vocabulary.class_names[:5]}...); the dataset classes and '
                             'model.vocabulary must name the same classes in the same order')
        return self.decode_head.loss(self.backbone.forward_dense(inputs), text, data_samples,
                                     **extra)

    # ----------------------------------------------------------------- inference
    def score_windows(self, crops: Tensor, text: Tensor) -> Tensor:
        """The head's (b, Q, h', w') scores of a batch of windows, autocast per ``dtype``."""
        amp_dtype = self.amp_dtype(crops.device.type)
        extra = self.head_kwargs(self._vocabulary) if self._vocabulary is not None else {}
        if amp_dtype is None:
            return self.decode_head.predict(self.backbone.forward_dense(crops), text, **extra)
        with torch.autocast(crops.device.type, dtype=amp_dtype):
            return self.decode_head.predict(self.backbone.forward_dense(crops), text, **extra)

    def probabilities(self, logits: Tensor) -> Tensor:
        """softmax(logit_scale · scores) over queries, or the scores themselves for a head
        whose ``scores`` are ``'probs'``."""
        if self.decode_head.scores == 'probs':
            return logits.float()
        return super().probabilities(logits)
