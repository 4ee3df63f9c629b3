"""The protocol between :class:`~denseclip.models.segmentors.OpenVocabEncoderDecoder` and a
trained decoder: a new trained method is a head (plus configs), never a new segmentor.

Data path (DESIGN.md §2)::

    images ──► backbone.forward_dense ──► DenseOutput: levels (multi-level maps), feats (joint-
                                          space z, B x E x h x w), global_feats (g), tokens
    names ──► prompt learner ──► text encoder ──► text (Q, P, D), gradients kept in training
    head.loss(dense, text, data_samples) -> {'loss_...': Tensor, ...}        (training)
    head.predict(dense, text) -> scores (B, Q, h', w')                      (each test window)

The segmentor owns the backbone, the text encoder, the prompt learner and the sliding-window
merge; the head owns everything between features and labels: text-conditioned decoders, necks,
learnable scales, losses and their weights. Labels reach ``loss`` as mmseg puts them,
``data_samples[i].gt_sem_seg`` (H, W) indices into the batch's vocabulary, 255 ignored.
``predict``'s scores are upsampled to the window by the segmentor, averaged over windows and
turned into probabilities per :attr:`OpenVocabHead.scores`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from mmengine.model import BaseModule
from mmseg.structures import SegDataSample
from torch import Tensor

from denseclip.models.backbones import DenseOutput


class OpenVocabHead(BaseModule):
    """Base of trained decode heads (see the module docstring for the protocol).

    Attributes:
        scores: what :meth:`predict` returns: ``'logits'`` (the segmentor takes a softmax over
            queries after merging windows, as mmseg's slide inference does) or ``'probs'``
            (class probabilities already, e.g. a mask-classification head's semantic map).
        merges_synonyms: whether ``loss``/``predict`` take ``query_to_class`` (see below).
    """

    scores: Literal['logits', 'probs'] = 'logits'
    # A head that merges a class's synonyms itself (MAFT+: max over its names' logits before
    # the softmax) sets this; the segmentor then passes ``query_to_class`` (Q,) to ``loss``
    # and ``predict``, and trains on vocabularies with several names per class.
    merges_synonyms: bool = False

    def loss(self, dense: DenseOutput, text: Tensor,
             data_samples: Sequence[SegDataSample]) -> dict[str, Tensor]:
        """Losses of a training batch.

        Args:
            dense: the backbone's output for the (B, 3, H, W) batch.
            text: (Q, P, D) unnormalised embeddings of the training vocabulary (Q = K, then
                the segmentor's ``extra_names``, e.g. MTA-CLIP's 'none').
            data_samples: B samples with ``gt_sem_seg``.

        Returns:
            Named losses (and logged metrics such as ``acc_seg``).
        """
        raise NotImplementedError

    def predict(self, dense: DenseOutput, text: Tensor) -> Tensor:
        """(B, Q, h', w') scores of a batch of windows for the Q queries of ``text``."""
        raise NotImplementedError
