"""RegionCLIP-style open-vocabulary detector: CLIP classifies the boxes of a class-agnostic
proposal source (Zhong et al., CVPR 2022; microsoft/RegionCLIP@4b8513b, reference notes §7.1).

Zero-shot inference (``CLIPFastRCNN`` + ``CLIPRes5ROIHeads`` + ``FastRCNNOutputLayers``)::

    image ─► proposals: a class-agnostic RPN trained on base classes (its own normalisation)
          │             | boxes of a proposals file | the ground-truth boxes
          ─► CLIP-normalised image ─► region embeddings r (N, D):
               ResNet: stem..res4 (stride 16) ─► RoIAlign 14x14 (aligned) ─► res5 ─► attnpool
               ViT:    dense joint-space map of any dense method ─► RoIAlign in the box ─► mean
          ─► p = softmax([cos(r, t_1..t_K), 0] / T), T = 0.01, zero background embedding
          ─► rescoring s = (p · o)^(1/2) with the proposal's objectness o
          ─► finite filter, score > 0.001, per-class NMS 0.5, top 100 (COCO) / 300 (LVIS)

The released code multiplies by the RPN's *raw objectness logit* (``objectness_logits`` of
detectron2's proposals, ``fast_rcnn.py`` ``inference``), so a proposal with a negative logit
gets a NaN score and is dropped by the finite filter; ``objectness='logit'`` reproduces that,
``objectness='sigmoid'`` uses the probability (every proposal kept), ``objectness=None``
keeps p (the released GT-box scripts, ``MULTIPLY_RPN_SCORE False``). mmdet's RPN returns
sigmoid scores; the logit is recovered as ``logit(clamp(p, 1e-6, 1 - 1e-6))`` (so logits
beyond ±13.8 saturate, a deviation only for proposals the sigmoid cannot tell apart either).

The background column is rescored too and dropped afterwards, as in the released code. Boxes
are the proposals themselves in zero-shot mode (``NO_BOX_DELTA True``); transfer training
learns class-agnostic deltas (``use_box_deltas=True``).

Transfer learning on base classes (the released ``CLIP_fast_rcnn_R_50_C4_ovd.yaml``):
proposals of the frozen RPN plus the ground truth, MaxIoU assignment at 0.5, 512 RoIs per image
with a quarter positive, the cross-entropy over [base classes, background] of the same logits
scaled by (1 - p_t)^0.5 (``FOCAL_SCALED_LOSS 0.5``) with the background weight 0.2
(``BG_CLS_LOSS_WEIGHT``), and a class-agnostic L1 box loss on the deltas (detectron2's box
transform weights (10, 10, 5, 5) = stds (0.1, 0.1, 0.2, 0.2), normalised by the RoIs).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmdet.models.detectors.base import BaseDetector
from mmdet.models.layers import multiclass_nms
from mmdet.models.task_modules.assigners import MaxIoUAssigner
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
from mmdet.models.task_modules.samplers import RandomSampler
from mmdet.registry import HOOKS, MODELS
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.hooks import Hook
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from open_clip.modified_resnet import ModifiedResNet
from torch import Tensor, nn
from torchvision.ops import roi_align

from denseclip.registry import MODELS as SEG_MODELS
from denseclip.models.text import (OpenCLIPTextEncoder, TextClassifier, Vocabulary,
                                   build_text_classifier)

logger = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466 * 255, 0.4578275 * 255, 0.40821073 * 255)
CLIP_STD = (0.26862954 * 255, 0.26130258 * 255, 0.27577711 * 255)
OBJECTNESS_MODES = ('logit', 'sigmoid', None)
PROPOSAL_SOURCES = ('rpn', 'file', 'gt')


def rescore(probs: Tensor, objectness: Tensor, mode: str | None = 'logit') -> Tensor:
    """RegionCLIP's geometric mean of class probabilities and proposal objectness.

    Args:
        probs: (N, K+1) softmax over K classes and the background.
        objectness: (N,) objectness *probabilities* (mmdet's RPN and proposal files).
        mode: ``'logit'`` (released: ``(p · logit(o))^(1/2)``, NaN where the logit is
            negative), ``'sigmoid'`` (``(p · o)^(1/2)``) or None (``p`` unchanged).
    """
    if mode is None:
        return probs
    if mode == 'logit':
        o = torch.logit(objectness.clamp(1e-6, 1 - 1e-6))
    elif mode == 'sigmoid':
        o = objectness
    else:
        raise ValueError(f'rescore: objectness={mode!r}; expected one of {OBJECTNESS_MODES}')
    return (probs * o[:, None]) ** 0.5


def class_logits(regions: Tensor, text: Tensor, query_to_class: Tensor, num_classes: int,
                 temperature: float) -> Tensor:
    """(N, K+1) logits [cos(r, t_k) for k < K; 0] / T: the cosine of the unit region and text
    embeddings, a class the max over its names (synonyms), and the zero background embedding
    (its cosine with any region is 0), all divided by the temperature."""
    cos = F.normalize(regions.float(), dim=-1) @ text.float().t()  # (N, Q)
    if cos.shape[1] != num_classes:
        per_class = cos.new_full((cos.shape[0], num_classes), float('-inf'))
        index = query_to_class.to(cos.device)[None].expand_as(cos)
        cos = per_class.scatter_reduce(1, index, cos, reduce='amax')
    return torch.cat([cos, cos.new_zeros(cos.shape[0], 1)], dim=1) / temperature


def _rebuild_classifiers(module: nn.Module, incompatible_keys) -> None:
    """Load-state-dict post hook: text embeddings of the text tower just loaded."""
    module.build_classifiers(cache=False)


@MODELS.register_module()
class RegionCLIPDetector(BaseDetector):
    """Zero-shot (and base-class transfer) detector: CLIP region embeddings against text.

    Args:
        backbone: ``CLIPResNet`` (C4: res4 -> RoIAlign -> res5 -> attention pool) or
            ``CLIPViT`` with any ``dense`` method (its joint-space map pooled in each box).
        vocabulary: the K detection classes (a list of names or lists of synonyms, or a name
            file); the evaluation dataset's classes in its order.
        train_vocabulary: the classes transfer training learns (the base classes, the
            training dataset's); None: ``vocabulary``.
        templates: prompt templates of the text classifier (name or list).
        name_sep: synonym separator of a vocabulary file.
        proposal_source: ``'rpn'`` (``rpn`` + ``rpn_checkpoint``), ``'file'`` (the
            ``proposals`` of each sample: the dataset's ``proposal_file`` with
            ``LoadProposals`` in the pipeline) or ``'gt'`` (the ground-truth boxes,
            objectness 1; RegionCLIP's ``CROP_REGION_TYPE GT``).
        rpn: an mmdet ``RPN`` model config, the class-agnostic proposal network (its own
            ``data_preprocessor`` gives its normalisation); frozen and in eval mode.
        rpn_checkpoint: its weights (a checkpoint of ``tools/train.py`` on the RPN config),
            loaded strictly: a missing or unexpected key is an error (RegionCLIP #67/#81:
            a silently mis-loaded RPN gives near-zero AP).
        roi_size: RoIAlign output; None: twice the attention pool's grid for a ResNet (14
            for RN50 at 224, 18 for RN50x4), 7 for a ViT.
        temperature: T of the softmax (``CLSS_TEMP`` 0.01).
        objectness: the rescoring switch, see :func:`rescore`.
        use_box_deltas: apply the learnt class-agnostic deltas (transfer); False: boxes are
            the proposals (zero-shot, ``NO_BOX_DELTA True``).
        frozen_stages: ResNet stages kept frozen in training (2: stem and res2, detectron2's
            ``FREEZE_AT 2``); BatchNorm is always frozen (``FrozenBN``).
        train_cfg: ``dict(bg_weight=0.2, focal_gamma=0.5, num_rois=512, pos_fraction=0.25,
            pos_iou=0.5)`` for transfer training.
        test_cfg: ``dict(score_thr=0.001, nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100)`` (RegionCLIP COCO; LVIS: 300 per image).
        clip_mean, clip_std: CLIP's normalisation on the 0-255 scale, applied by the detector:
            its ``data_preprocessor`` must only pad (``mean=None, std=None``) and give RGB
            (``bgr_to_rgb=True`` for mmcv-loaded images), so the RPN can apply its own.
    """

    def __init__(self, backbone: dict, vocabulary: str | Sequence | Vocabulary,
                 train_vocabulary: str | Sequence | Vocabulary | None = None,
                 templates: str | Sequence[str] = 'openai_imagenet', name_sep: str = ', ',
                 proposal_source: str = 'rpn', rpn: dict | None = None,
                 rpn_checkpoint: str | None = None, roi_size: int | None = None,
                 temperature: float = 0.01, objectness: str | None = 'logit',
                 use_box_deltas: bool = False, frozen_stages: int = 2,
                 train_cfg: dict | None = None, test_cfg: dict | None = None,
                 clip_mean: Sequence[float] = CLIP_MEAN, clip_std: Sequence[float] = CLIP_STD,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if proposal_source not in PROPOSAL_SOURCES:
            raise ValueError(f'RegionCLIPDetector: proposal_source={proposal_source!r}; '
                             f'expected one of {PROPOSAL_SOURCES}')
        if objectness not in OBJECTNESS_MODES:
            raise ValueError(f'RegionCLIPDetector: objectness={objectness!r}; expected one of '
                             f'{OBJECTNESS_MODES}')
        # denseclip's backbones and dense attentions live in mmseg's registry (CLIPViT builds
        # its ``dense`` there): build them in mmseg's scope from an mmdet config.
        with DefaultScope.overwrite_default_scope('mmseg'):
            self.backbone = SEG_MODELS.build(backbone)
        self.is_resnet = isinstance(getattr(self.backbone, 'visual', None), ModifiedResNet)
        if self.is_resnet:
            grid = int(round((self.backbone.visual.attnpool.positional_embedding.shape[0] - 1)
                             ** 0.5))
            self.roi_size = roi_size or 2 * grid
            if self.roi_size != 2 * grid:
                raise ValueError(f'RegionCLIPDetector: roi_size={roi_size}, but res5 halves it '
                                 f'and the attention pool of this CLIP takes a {grid}x{grid} '
                                 f'grid: use roi_size={2 * grid}')
        else:
            self.roi_size = roi_size or 7
        self.proposal_source = proposal_source
        self.rpn = None
        self.rpn_loaded = False
        if proposal_source == 'rpn':
            if rpn is None:
                raise ValueError("RegionCLIPDetector: proposal_source='rpn' needs rpn=dict("
                                 "type='RPN', ...), the class-agnostic proposal network")
            self.rpn = MODELS.build(ConfigDict(rpn))  # mmdet heads read cfg.attr
            if rpn_checkpoint is not None:
                self.load_rpn(rpn_checkpoint)
            for p in self.rpn.parameters():
                p.requires_grad_(False)
        self.temperature = temperature
        self.objectness = objectness
        self.use_box_deltas = use_box_deltas
        self.frozen_stages = frozen_stages
        self.train_cfg = {**dict(bg_weight=0.2, focal_gamma=0.5, num_rois=512,
                                 pos_fraction=0.25, pos_iou=0.5), **(train_cfg or {})}
        self.test_cfg = {**dict(score_thr=0.001, nms=dict(type='nms', iou_threshold=0.5),
                                max_per_img=100), **(test_cfg or {})}
        self.register_buffer('clip_mean', torch.tensor(clip_mean).view(1, 3, 1, 1), False)
        self.register_buffer('clip_std', torch.tensor(clip_std).view(1, 3, 1, 1), False)
        embed_dim = self.backbone.embed_dim
        self.bbox_pred = nn.Linear(embed_dim, 4)  # class-agnostic deltas (transfer)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.bbox_pred.bias)
        self.bbox_coder = DeltaXYWHBBoxCoder(target_means=(0., 0., 0., 0.),
                                             target_stds=(0.1, 0.1, 0.2, 0.2))
        # The backbone CLIP's frozen text tower (shared, not copied): no second text side.
        self.text_encoder = OpenCLIPTextEncoder(clip=self.backbone.clip,
                                                source=self.backbone.source)
        self.templates, self.name_sep = templates, name_sep
        self.vocabulary, self.train_vocabulary = vocabulary, train_vocabulary
        self.build_classifiers()
        # A checkpoint (tools/test.py --checkpoint, a converted RegionCLIP release) brings the
        # text tower's weights after __init__: the classifiers follow them.
        self.register_load_state_dict_post_hook(_rebuild_classifiers)

    def build_classifiers(self, cache: bool = True) -> None:
        """The text classifiers of ``vocabulary`` and ``train_vocabulary`` from the current
        text tower (``cache=False``: weights loaded after the build, which the source's cache
        key does not describe)."""
        self.classifier = self.build_classifier(self.vocabulary, cache)
        self.train_classifier = (self.classifier if self.train_vocabulary is None
                                 else self.build_classifier(self.train_vocabulary, cache))

    # ------------------------------------------------------------------ set-up
    def build_classifier(self, vocabulary: str | os.PathLike | Sequence | Vocabulary,
                         cache: bool = True) -> TextClassifier:
        """The text classifier of ``vocabulary`` (built, or read from the disk cache)."""
        try:
            if isinstance(vocabulary, (str, os.PathLike)):
                vocabulary = Vocabulary.from_file(vocabulary, sep=self.name_sep)
            elif not isinstance(vocabulary, Vocabulary):
                vocabulary = Vocabulary.from_list(list(vocabulary or []))
        except ValueError as err:
            raise ValueError(f'RegionCLIPDetector: vocabulary: {err}') from err
        return build_text_classifier(self.text_encoder, None, vocabulary, self.templates,
                                     model_id=self.backbone.source.identity if cache else None)

    def set_vocabulary(self, vocabulary: str | os.PathLike | Sequence | Vocabulary) -> None:
        """Detect another vocabulary (the zero-shot classes) from now on."""
        self.vocabulary = vocabulary
        self.classifier = self.build_classifier(vocabulary)

    @property
    def class_names(self) -> list[str]:
        """The classes :meth:`predict` labels index."""
        return self.classifier.class_names

    @property
    def train_class_names(self) -> list[str]:
        """The classes :meth:`loss` labels index."""
        return self.train_classifier.class_names

    def load_rpn(self, path: str) -> None:
        """Load the RPN's weights strictly (the ``state_dict`` of an mmengine checkpoint of the
        RPN config; a ``rpn.`` prefix, as in a whole-detector checkpoint, is stripped)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f'RegionCLIPDetector: rpn_checkpoint {path} not found; train '
                                    'one with tools/train.py on the RPN config')
        from denseclip.engine.checkpoint import read_checkpoint  # the engine imports models
        state, _ = read_checkpoint(path)  # weights_only, mmengine's classes allow-listed
        if any(k.startswith('rpn.') for k in state):
            state = {k[4:]: v for k, v in state.items() if k.startswith('rpn.')}
        try:
            missing, unexpected = self.rpn.load_state_dict(state, strict=False)
        except RuntimeError as err:  # shape mismatches
            raise ValueError(f'RegionCLIPDetector: rpn_checkpoint {path} does not match the RPN '
                             f'config: {err}') from err
        if missing or unexpected:
            raise KeyError(f'RegionCLIPDetector: rpn_checkpoint {path} does not match the RPN '
                           f'config: missing {missing[:8]}, unexpected {unexpected[:8]} (a '
                           'mis-loaded RPN gives near-zero AP, RegionCLIP #67/#81)')
        self.rpn_loaded = True

    def train(self, mode: bool = True) -> 'RegionCLIPDetector':
        super().train(mode)
        if self.rpn is not None:
            self.rpn.eval()  # frozen, offline proposal network
        for m in self.backbone.modules():  # FrozenBN
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        if mode and self.is_resnet:
            v = self.backbone.visual
            stem = [v.conv1, v.bn1, v.conv2, v.bn2, v.conv3, v.bn3]
            stages = [stem, [v.layer1], [v.layer2], [v.layer3]]
            for stage in stages[:self.frozen_stages]:
                for module in stage:
                    module.requires_grad_(False)
        return self

    # ------------------------------------------------------------------ pieces
    def _clip_inputs(self, inputs: Tensor) -> Tensor:
        """RGB 0-255 batch (the data preprocessor only pads) -> CLIP-normalised."""
        return (inputs - self.clip_mean) / self.clip_std

    def _rpn_inputs(self, inputs: Tensor) -> Tensor:
        """The RGB 0-255 batch as the RPN's own data preprocessor would give it: its channel
        order (RGB when it converts the loaded BGR images, else BGR) and normalisation."""
        pre = self.rpn.data_preprocessor
        x = inputs
        if not getattr(pre, '_channel_conversion', False):
            x = x[:, [2, 1, 0]]  # an RPN trained on BGR inputs
        if getattr(pre, '_enable_normalize', False):
            x = (x - pre.mean) / pre.std
        return x

    def region_embeddings(self, images: Tensor, boxes: list[Tensor]) -> Tensor:
        """(sum N_i, D) CLIP embeddings of the boxes (x1, y1, x2, y2 in input pixels) of each
        image of the CLIP-normalised batch ``images``."""
        rois = [b.float() for b in boxes]
        if self.is_resnet:
            visual = self.backbone.visual
            x = visual.stem(images.to(visual.conv1.weight.dtype))
            x = visual.layer3(visual.layer2(visual.layer1(x)))  # res4, stride 16
            scale = x.shape[-1] / images.shape[-1]
            x = roi_align(x, rois, self.roi_size, spatial_scale=scale, sampling_ratio=0,
                          aligned=True)  # ROIAlignV2
            return visual.attnpool(visual.layer4(x))  # res5, attention pool
        dense = self.backbone.encode_dense(images)  # (B, D, h, w), joint space
        scale = dense.shape[-1] / images.shape[-1]
        x = roi_align(dense.float(), rois, self.roi_size, spatial_scale=scale, sampling_ratio=0,
                      aligned=True)
        return x.mean(dim=(2, 3))

    def logits(self, regions: Tensor, classifier: TextClassifier | None = None) -> Tensor:
        """(N, K+1) logits of region embeddings (:func:`class_logits`)."""
        c = classifier or self.classifier
        return class_logits(regions, c.embeddings.to(regions.device), c.query_to_class,
                            c.num_classes, self.temperature)

    def proposals(self, inputs: Tensor, data_samples: Sequence[DetDataSample]
                  ) -> list[InstanceData]:
        """Boxes (input pixels) and objectness probabilities of each image."""
        if self.proposal_source == 'rpn':
            if not self.rpn_loaded:
                raise RuntimeError('RegionCLIPDetector: the RPN has no trained weights; set '
                                   'model.rpn_checkpoint (a random RPN gives near-zero AP, '
                                   'RegionCLIP #67/#81)')
            with torch.no_grad():
                x = self.rpn.extract_feat(self._rpn_inputs(inputs))
                return self.rpn.bbox_head.predict(x, data_samples, rescale=False)
        out = []
        for s in data_samples:
            if self.proposal_source == 'gt':
                boxes = s.gt_instances.bboxes
                boxes = boxes.tensor if hasattr(boxes, 'tensor') else boxes
                out.append(InstanceData(bboxes=boxes.float(),
                                        scores=boxes.new_ones(len(boxes)).float()))
                continue
            if 'proposals' not in s:
                raise KeyError(f"RegionCLIPDetector: proposal_source='file' but "
                               f"{s.metainfo.get('img_path', 'a sample')} has no proposals; "
                               "set the dataset's proposal_file and add LoadProposals to the "
                               'pipeline')
            boxes = s.proposals.bboxes.float().to(inputs.device)
            if boxes.ndim != 2 or boxes.shape[-1] != 4:
                raise ValueError(f"RegionCLIPDetector: proposals of {s.metainfo.get('img_path')} "
                                 f'have shape {tuple(boxes.shape)}, expected (N, 4)')
            scale = boxes.new_tensor(s.metainfo.get('scale_factor', (1.0, 1.0))).repeat(2)
            scores = s.proposals.get('scores', boxes.new_ones(len(boxes)))
            out.append(InstanceData(bboxes=boxes * scale, scores=scores.float().to(boxes)))
        return out

    # ------------------------------------------------------------------ mmdet API
    def extract_feat(self, inputs: Tensor):
        return self.backbone(self._clip_inputs(inputs))

    def _forward(self, inputs: Tensor, data_samples=None):
        props = self.proposals(inputs, data_samples)
        return self.logits(self.region_embeddings(self._clip_inputs(inputs),
                                                  [p.bboxes for p in props]))

    def predict(self, inputs: Tensor, data_samples: Sequence[DetDataSample],
                rescale: bool = True) -> list[DetDataSample]:
        props = self.proposals(inputs, data_samples)
        regions = self.region_embeddings(self._clip_inputs(inputs), [p.bboxes for p in props])
        probs = torch.softmax(self.logits(regions), dim=-1)
        deltas = self.bbox_pred(regions) if self.use_box_deltas else None
        start = 0
        for i, (sample, prop) in enumerate(zip(data_samples, props)):
            n = len(prop.bboxes)
            boxes = prop.bboxes.float()
            h, w = sample.metainfo['img_shape'][:2]
            if deltas is not None:
                boxes = self.bbox_coder.decode(boxes, deltas[start:start + n], max_shape=(h, w))
            scores = rescore(probs[start:start + n], prop.scores.float(), self.objectness)
            start += n
            sample.pred_instances = self.postprocess(boxes, scores, (h, w),
                                                     sample.metainfo.get('scale_factor')
                                                     if rescale else None)
        return list(data_samples)

    def postprocess(self, boxes: Tensor, scores: Tensor, img_shape: tuple[int, int],
                    scale_factor=None) -> InstanceData:
        """Finite filter, clip to the image, score threshold, per-class NMS, top-k (the
        released ``fast_rcnn_inference_single_image``); boxes back to the original image."""
        keep = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
        boxes, scores = boxes[keep], scores[keep]
        h, w = img_shape
        boxes = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                             boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)], dim=1)
        cfg = self.test_cfg
        dets, labels = multiclass_nms(boxes, scores, cfg['score_thr'], cfg['nms'],
                                      cfg['max_per_img'])
        out_boxes = dets[:, :4]
        if scale_factor is not None:
            out_boxes = out_boxes / out_boxes.new_tensor(scale_factor).repeat(2)
        return InstanceData(bboxes=out_boxes, scores=dets[:, 4], labels=labels)

    def loss(self, inputs: Tensor, data_samples: Sequence[DetDataSample]) -> dict:
        """Transfer learning on base classes (module docstring): focal-scaled, background-
        weighted cross-entropy over [classes, background] and a class-agnostic L1 box loss."""
        cfg = self.train_cfg
        props = self.proposals(inputs, data_samples)
        assigner = MaxIoUAssigner(pos_iou_thr=cfg['pos_iou'], neg_iou_thr=cfg['pos_iou'],
                                  min_pos_iou=cfg['pos_iou'], match_low_quality=False)
        sampler = RandomSampler(num=cfg['num_rois'], pos_fraction=cfg['pos_fraction'],
                                add_gt_as_proposals=True)
        rois, labels, targets, pos_mask = [], [], [], []
        k = self.train_classifier.num_classes
        for sample, prop in zip(data_samples, props):
            gt = sample.gt_instances
            gt_boxes = gt.bboxes.tensor if hasattr(gt.bboxes, 'tensor') else gt.bboxes
            if len(gt.labels) and int(gt.labels.max()) >= k:
                raise ValueError(f'RegionCLIPDetector: label {int(gt.labels.max())} in '
                                 f"{sample.metainfo.get('img_path')} but the vocabulary has "
                                 f'{k} classes: the dataset classes do not match it')
            pred = InstanceData(priors=prop.bboxes.detach().float())
            gts = InstanceData(bboxes=gt_boxes.float(), labels=gt.labels)
            result = sampler.sample(assigner.assign(pred, gts), pred, gts)
            boxes = torch.cat([result.pos_priors, result.neg_priors])
            lab = torch.cat([result.pos_gt_labels,
                             result.pos_gt_labels.new_full((len(result.neg_inds),), k)])
            tgt = torch.zeros_like(boxes)
            if len(result.pos_inds):
                tgt[:len(result.pos_inds)] = self.bbox_coder.encode(result.pos_priors,
                                                                    result.pos_gt_bboxes)
            rois.append(boxes)
            labels.append(lab)
            targets.append(tgt)
            pos_mask.append(lab < k)
        regions = self.region_embeddings(self._clip_inputs(inputs), rois)
        logits = self.logits(regions, self.train_classifier)
        labels, targets, pos = torch.cat(labels), torch.cat(targets), torch.cat(pos_mask)
        ce = F.cross_entropy(logits, labels, reduction='none')
        p_t = torch.softmax(logits, dim=-1).gather(1, labels[:, None])[:, 0]
        weight = torch.where(labels == k, ce.new_tensor(cfg['bg_weight']), ce.new_tensor(1.0))
        loss_cls = (ce * (1 - p_t) ** cfg['focal_gamma'] * weight).mean()
        deltas = self.bbox_pred(regions)
        loss_bbox = (deltas[pos] - targets[pos]).abs().sum() / max(len(labels), 1)
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox)


@HOOKS.register_module()
class DetVocabularyCheckHook(Hook):
    """Before a test or validation run: the detector's vocabulary must be the evaluation
    dataset's classes, in order (labels index both), else ``ValueError`` naming both lists.
    Before training: the training dataset's classes must be the training vocabulary's. Names
    compare with ``_`` as a space, case-insensitively (LVIS names are ``aerosol_can``; the
    text side reads ``aerosol can``)."""

    def _check(self, runner, loader_name: str, attr: str = 'class_names') -> None:
        loader = getattr(runner, loader_name)
        dataset = getattr(loader, 'dataset', None)
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        if dataset is None or not hasattr(model, attr):
            return
        classes, names = list(dataset.metainfo.get('classes', ())), list(getattr(model, attr))
        def norm(names):
            return [str(n).replace('_', ' ').lower() for n in names]

        if norm(classes) != norm(names):
            raise ValueError(f'{type(model).__name__}: vocabulary {names} does not match the '
                             f'{loader_name} dataset classes {classes}')

    def before_train(self, runner) -> None:
        self._check(runner, 'train_dataloader', 'train_class_names')

    def before_val(self, runner) -> None:
        self._check(runner, 'val_dataloader')

    def before_test(self, runner) -> None:
        self._check(runner, 'test_dataloader')


@HOOKS.register_module()
class FreezeModulesHook(Hook):
    """Before training, stop gradients of the model's submodules named in ``modules`` (dotted
    attribute paths, e.g. ``('backbone',)``): no backward pass runs through them, which an
    ``lr_mult=0`` would not spare. Used by the toy RPN, whose toy CLIP trunk stays frozen."""

    def __init__(self, modules: Sequence[str] = ('backbone',)) -> None:
        self.modules = tuple(modules)

    def before_train(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        for path in self.modules:
            module = model
            for name in path.split('.'):
                if not hasattr(module, name):
                    raise AttributeError(f'FreezeModulesHook: {type(model).__name__} has no '
                                         f'submodule {path!r}')
                module = getattr(module, name)
            module.requires_grad_(False)
