"""DenseCLIP detectors: RetinaNet and Mask R-CNN whose FPN also sees the pixel-text score map.

Rao et al., "DenseCLIP: Language-Guided Dense Prediction with Context-Aware Prompting", CVPR
2022, https://arxiv.org/abs/2112.01518; raoyongming/DenseCLIP@5eda47f detection/denseclip/
denseclip.py (``DenseCLIP_RetinaNet``, ``DenseCLIP_MaskRCNN``) and detection/configs/. Against
the stock mmdet detectors, the class names enter the feature pyramid: the text side, the
context decoder and the score map are the segmentation head's (:mod:`denseclip.models.heads.
denseclip`), shared, not copied::

    w = ContextPrompt(text encoder, names)      [SOS, p_1..p_8, name, EOS], frozen tower
    t = w + γ ⊙ ContextDecoder(w, [g; z])       context_aware_text (γ init 1e-4)
    s = cos(z, t) / τ                           τ = 0.07, applied *before* the concat here
    x4 <- [x4; s]  -> FPN -> RetinaHead | RPN + RoI heads          (2048 + K channels, RN50)
    L_aux = Σ BCE(σ(up4(s)), T) ⊙ W / Σ W       T, W rasterised from the *boxes* (box_targets)

The backbone is ``CLIPResNetWithAttention(input_resolution=1344, pos_embed='crop')``: the
released detection attention pool crops its 42 x 42 positional table to the input's grid.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from mmdet.models.detectors import SingleStageDetector, TwoStageDetector
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import get_box_tensor
from torch import Tensor, nn

from denseclip.models.heads.denseclip import DenseCLIPHead, context_aware_text
from denseclip.models.text import OpenCLIPTextEncoder, Vocabulary, build_text_side
from denseclip.registry import MMDET_MODELS

__all__ = ['DenseCLIPRetinaNet', 'DenseCLIPMaskRCNN', 'ScoreLevels', 'box_targets',
           'box_bce_loss']

VocabularySpec = str | os.PathLike | Sequence | Vocabulary
AUX_STRIDE = 4  # build_seg_target: the targets live on the (H/4, W/4) grid of the padded batch


def box_targets(boxes: Sequence[Tensor], labels: Sequence[Tensor], num_classes: int,
                size: tuple[int, int], stride: int = AUX_STRIDE) -> tuple[Tensor, Tensor]:
    """Targets and weights of the auxiliary loss, rasterised from boxes as released
    (``build_seg_target``): corners divided by ``stride`` and truncated, clamped to the last
    row/column, ends exclusive; T[k] = 1 inside the boxes of class k, W = the union of all boxes.

    Args:
        boxes: per image, (N_i, 4) x1, y1, x2, y2 in the padded input's pixels.
        labels: per image, (N_i,) class indices.
        num_classes: K.
        size: (h, w) of the target grid (the padded input's H // stride, W // stride).
        stride: pixels per grid cell.

    Returns:
        T (B, K, h, w) and W (B, 1, h, w), float, on the boxes' device.
    """
    h, w = size
    device = boxes[0].device if len(boxes) else torch.device('cpu')
    ys = torch.arange(h, device=device)[None, :, None]  # (1, h, 1)
    xs = torch.arange(w, device=device)[None, None, :]  # (1, 1, w)
    targets, weights = [], []
    for bboxes, cls in zip(boxes, labels):
        b = (bboxes.detach() / stride).long()  # (N, 4), truncated as ``.long()`` there
        x1, x2 = b[:, 0].clamp(0, w - 1), b[:, 2].clamp(0, w - 1)
        y1, y2 = b[:, 1].clamp(0, h - 1), b[:, 3].clamp(0, h - 1)
        inside = ((ys >= y1[:, None, None]) & (ys < y2[:, None, None])
                  & (xs >= x1[:, None, None]) & (xs < x2[:, None, None]))  # (N, h, w)
        target = torch.zeros(num_classes, h * w, device=device)
        target.index_add_(0, cls.to(device), inside.flatten(1).float())  # (K, hw)
        targets.append(target.clamp_(max=1).view(num_classes, h, w))
        weights.append(inside.any(0, keepdim=True).float())  # (1, h, w)
    return torch.stack(targets), torch.stack(weights)


def box_bce_loss(score: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Σ BCE(σ(score), T) ⊙ W / Σ W over all K channels (``compute_seg_loss``).

    Args:
        score: (B, K, h, w) logits s / τ on the target grid.
        target: (B, K, h, w) from :func:`box_targets`.
        weight: (B, 1, h, w) box union, broadcast over K.

    Returns:
        The scalar loss. Deviation: 0 (with the graph) for a batch without a box pixel, where
        the released division is 0 / 0; BCE on logits, the released ``BCE(sigmoid(s))`` to
        float rounding at |s| <= 1 / τ.
    """
    weight = weight.expand_as(score).to(torch.float32)
    total = weight.sum()
    loss = F.binary_cross_entropy_with_logits(score.float(), target, weight=weight,
                                              reduction='sum')
    return loss / total if total > 0 else loss * 0.0


class ScoreLevels(NamedTuple):
    """The backbone's levels with s / τ joined to one of them, and s / τ itself."""

    levels: tuple[Tensor, ...]
    score: Tensor  # (B, K, h, w) at the backbone's dense stride


class DenseCLIPDetector:
    """What both DenseCLIP detectors add to their mmdet base (see the module docstring).

    mmdet's ``loss`` gives its ``batch_inputs`` to ``extract_feat`` only, so :meth:`loss` hands
    it the :class:`ScoreLevels` it computed and keeps their score map for the auxiliary loss:
    one forward, and mmdet's own RPN/RoI/RetinaHead loss code.
    """

    backbone: nn.Module
    neck: nn.Module

    def _init_denseclip(self, *, vocabulary: VocabularySpec, num_classes: int, prompt: dict,
                        text_encoder: dict | None, context_decoder: dict | None, tau: float,
                        gamma_init: float, score_concat_index: int, aux_loss_weight: float,
                        name_sep: str) -> None:
        owner = type(self).__name__
        if isinstance(vocabulary, Vocabulary):
            vocab = vocabulary
        elif isinstance(vocabulary, (str, os.PathLike)):
            vocab = Vocabulary.from_file(vocabulary, sep=name_sep)
        elif isinstance(vocabulary, Sequence) and len(vocabulary) == 0:
            raise ValueError(f'{owner}: vocabulary is empty; give the dataset\'s class names '
                             '(e.g. its metainfo classes) or a name file')
        else:
            vocab = Vocabulary.from_list(vocabulary)
        synonyms = [names for names in vocab.classes if len(names) > 1]
        if synonyms:
            raise ValueError(f'{owner}: class {synonyms[0]!r} has synonyms; the score map and the '
                             'heads take one name per class (the released class_names)')
        self.class_names = tuple(vocab.class_names)
        if len(self.class_names) != num_classes:
            raise ValueError(f'{owner}: the vocabulary has {len(self.class_names)} classes but '
                             f'the heads predict num_classes={num_classes}; they must agree')
        if not hasattr(self.backbone, 'forward_dense'):
            raise TypeError(f'{owner}: backbone {type(self.backbone).__name__} has no '
                            'forward_dense; use CLIPResNetWithAttention or CLIPVisionTransformer')
        self.text_encoder: OpenCLIPTextEncoder
        self.text_encoder, self.prompt = build_text_side(self.backbone, text_encoder, prompt,
                                                         MMDET_MODELS)
        self.context_decoder = None
        if context_decoder is not None:
            self.context_decoder = MMDET_MODELS.build(context_decoder)
            embed_dim = self.context_decoder.out_proj[1].out_features
            self.gamma = nn.Parameter(torch.full((embed_dim,), gamma_init))  # (E,)
        self.tau = tau
        self.score_concat_index = score_concat_index
        self.aux_loss_weight = aux_loss_weight

    @property
    def train_class_names(self) -> tuple[str, ...]:
        """The training classes: the vocabulary (closed set; ``DetVocabularyCheckHook`` checks
        them against the training dataset's, as the released train.py set ``class_names =
        dataset.CLASSES``)."""
        return self.class_names

    def score_levels(self, inputs: Tensor) -> ScoreLevels:
        """Backbone, context-aware text and s / τ joined to level ``score_concat_index``.

        Args:
            inputs: (B, 3, H, W) normalised, padded batch.
        """
        dense = self.backbone.forward_dense(inputs)
        text = self.prompt(self.text_encoder, self.class_names)  # (K, 1, E)
        t = context_aware_text(dense, text, self.context_decoder, getattr(self, 'gamma', None),
                               type(self).__name__)  # (B, K, E)
        score = DenseCLIPHead.score_map(dense.feats, t) / self.tau  # (B, K, h, w)
        levels = list(dense.levels)
        i = self.score_concat_index
        levels[i] = torch.cat([levels[i], score.to(levels[i].dtype)], dim=1)  # (B, C_i + K, ..)
        expected = getattr(self.neck, 'in_channels', None)
        if isinstance(expected, Sequence) and len(expected) == len(levels):
            got = [int(x.shape[1]) for x in levels]
            if list(expected) != got:
                raise ValueError(f'{type(self).__name__}: the neck expects in_channels='
                                 f'{list(expected)} but the levels have {got} channels (level '
                                 f'{i} holds C + K with K={len(self.class_names)} classes)')
        return ScoreLevels(tuple(levels), score)

    def extract_feat(self, batch_inputs: Tensor | ScoreLevels) -> tuple[Tensor, ...]:
        """The neck's levels, from images or from :meth:`score_levels` already computed."""
        if not isinstance(batch_inputs, ScoreLevels):
            batch_inputs = self.score_levels(batch_inputs)
        return self.neck(list(batch_inputs.levels))

    def loss(self, batch_inputs: Tensor, batch_data_samples: list[DetDataSample]) -> dict:
        """The detector's losses and ``loss_aux_seg`` (the box-rasterised BCE on s / τ)."""
        K = len(self.class_names)
        for sample in batch_data_samples:
            labels = sample.gt_instances.labels
            if labels.numel() and int(labels.max()) >= K:
                raise ValueError(f'{type(self).__name__}: label {int(labels.max())} in a training '
                                 f'batch, but the vocabulary has {K} classes '
                                 f'({list(self.class_names[:5])}...); the dataset classes and '
                                 'model.vocabulary must name the same classes in the same order')
        feats = self.score_levels(batch_inputs)
        losses = super().loss(feats, batch_data_samples)
        H, W = batch_inputs.shape[-2:]
        size = (H // AUX_STRIDE, W // AUX_STRIDE)
        target, weight = box_targets([get_box_tensor(s.gt_instances.bboxes)
                                      for s in batch_data_samples],
                                     [s.gt_instances.labels for s in batch_data_samples], K, size)
        score = F.interpolate(feats.score, size=size, mode='bilinear',
                              align_corners=False)  # (B, K, H/4, W/4), F.upsample there
        losses['loss_aux_seg'] = self.aux_loss_weight * box_bce_loss(score, target, weight)
        return losses


@MMDET_MODELS.register_module()
class DenseCLIPRetinaNet(DenseCLIPDetector, SingleStageDetector):
    """DenseCLIP RetinaNet (``DenseCLIP_RetinaNet``).

    Args:
        backbone: ``CLIPResNetWithAttention`` (or ``CLIPVisionTransformer``); its CLIP's text
            tower becomes the text encoder.
        neck: mmdet ``FPN`` whose ``in_channels[score_concat_index]`` counts the K score maps.
        bbox_head: ``RetinaHead`` with ``num_classes`` = K.
        vocabulary: the dataset's classes, in its order: a list or a name file.
        prompt: the prompt learner (DenseCLIP: ``ContextPrompt``, 8 tokens, names <= 3 BPE).
        text_encoder: :class:`OpenCLIPTextEncoder` settings (``context_length=13``).
        context_decoder: a ``ContextDecoder`` config, or None (t = w).
        tau: the temperature of s / τ (0.07).
        gamma_init: initial γ (1e-4).
        score_concat_index: the level s / τ joins (x4: 3).
        aux_loss_weight: weight of ``loss_aux_seg`` (released: 1).
        name_sep: synonym separator of a name file.
        train_cfg, test_cfg, data_preprocessor, init_cfg: as mmdet's ``RetinaNet``.
    """

    def __init__(self, backbone: dict, neck: dict, bbox_head: dict, vocabulary: VocabularySpec,
                 prompt: dict | None = None, text_encoder: dict | None = None,
                 context_decoder: dict | None = None, tau: float = 0.07,
                 gamma_init: float = 1e-4, score_concat_index: int = 3,
                 aux_loss_weight: float = 1.0, name_sep: str = ', ',
                 train_cfg: dict | None = None, test_cfg: dict | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        SingleStageDetector.__init__(self, backbone=backbone, neck=neck, bbox_head=bbox_head,
                                     train_cfg=train_cfg, test_cfg=test_cfg,
                                     data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self._init_denseclip(vocabulary=vocabulary, num_classes=self.bbox_head.num_classes,
                             prompt=prompt or dict(type='ContextPrompt'),
                             text_encoder=text_encoder, context_decoder=context_decoder,
                             tau=tau, gamma_init=gamma_init,
                             score_concat_index=score_concat_index,
                             aux_loss_weight=aux_loss_weight, name_sep=name_sep)


@MMDET_MODELS.register_module()
class DenseCLIPMaskRCNN(DenseCLIPDetector, TwoStageDetector):
    """DenseCLIP Mask R-CNN (``DenseCLIP_MaskRCNN``): as :class:`DenseCLIPRetinaNet` with
    ``rpn_head`` and ``roi_head`` (bbox and mask heads with ``num_classes`` = K) instead of a
    ``bbox_head``; the auxiliary targets still come from the boxes, not the masks."""

    def __init__(self, backbone: dict, neck: dict, rpn_head: dict, roi_head: dict,
                 vocabulary: VocabularySpec, prompt: dict | None = None,
                 text_encoder: dict | None = None, context_decoder: dict | None = None,
                 tau: float = 0.07, gamma_init: float = 1e-4, score_concat_index: int = 3,
                 aux_loss_weight: float = 1.0, name_sep: str = ', ',
                 train_cfg: dict | None = None, test_cfg: dict | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        TwoStageDetector.__init__(self, backbone=backbone, neck=neck, rpn_head=rpn_head,
                                  roi_head=roi_head, train_cfg=train_cfg, test_cfg=test_cfg,
                                  data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        heads = {'roi_head.bbox_head': self.roi_head.bbox_head.num_classes}
        if self.roi_head.with_mask:
            heads['roi_head.mask_head'] = self.roi_head.mask_head.num_classes
        if len(set(heads.values())) > 1:
            raise ValueError(f'DenseCLIPMaskRCNN: num_classes differ between heads: {heads}')
        self._init_denseclip(vocabulary=vocabulary, num_classes=next(iter(heads.values())),
                             prompt=prompt or dict(type='ContextPrompt'),
                             text_encoder=text_encoder, context_decoder=context_decoder,
                             tau=tau, gamma_init=gamma_init,
                             score_concat_index=score_concat_index,
                             aux_loss_weight=aux_loss_weight, name_sep=name_sep)
