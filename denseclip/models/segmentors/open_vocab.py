"""The training-free open-vocabulary segmentor shared by every dense CLIP method.

Call graph (mmseg ``BaseSegmentor`` contract)::

    predict(inputs, data_samples)
      └─ per image: inference(img, ori_shape)
           ├─ slide_inference() | window_logits(image)   window scores (Q, H, W)
           │    └─ per batch of windows: window_logits(crops) -> add into the canvas
           │         ├─ forward_dense [autocast if dtype != 'fp32'] -> DenseOutput
           │         ├─ feature_refiner(feats, dense, backbone)      (CLIP-DINOiser)
           │         ├─ float32 cosine with the text (b, Q, h', w')
           │         ├─ patch_refiner(logits, dense, backbone)       (CLIPtrase, KSPD)
           │         ├─ window_softmax: softmax(logit_scale·cos) [+ FOUND override]
           │         └─ upsample to the window
           ├─ resize to ori_shape, optional refiner (PAMR) on the merged scores
      └─ postprocess(): softmax(logit_scale·cos) over queries (unless window_softmax)
                        -> max over synonyms -> area_thd (SCLIP) -> argmax -> prob_thd

Slide windows follow the reference grid of SCLIP/NACLIP/ClearCLIP/ProxyCLIP ``forward_slide``
(SCLIP clip_segmentor.py@d84d4ab): ``h_grids = max(H - crop + stride - 1, 0) // stride + 1``,
the last window shifted back inside the image; but the windows of an image are encoded in
batches of ``window_batch`` instead of one at a time, and each batch is added into the canvas
before the next is encoded, so memory grows with ``window_batch``, not with the window count.
Only the image encoder runs in reduced precision (``dtype``, under autocast); cosine,
upsampling, merging and softmax stay float32. The weights autocast would cast on every forward
are cast once and kept (:func:`autocast_weights`).
"""
from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

import open_clip
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.structures import SegDataSample
from torch import Tensor, nn
from torch.func import functional_call

from denseclip.models.backbones import DenseOutput
from denseclip.models.text import (TextClassifier, Vocabulary, build_text_classifier,
                                   file_fingerprint)
from denseclip.registry import MODELS

logger = logging.getLogger(__name__)

# OpenAI CLIP's normalisation on the 0-255 scale, RGB (every harness's SegDataPreProcessor).
CLIP_MEAN = (122.771, 116.746, 104.094)
CLIP_STD = (68.501, 66.632, 70.323)

# Autocast dtype of the image encoder per ``dtype`` setting (None: plain float32).
PRECISIONS: dict[str, torch.dtype | None] = {
    'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def autocast_weights(backbone: nn.Module) -> dict[str, Tensor]:
    """The image path's weights that autocast runs in low precision, by parameter name.

    Weights and biases of ``nn.Linear`` / ``nn.Conv2d`` and the in-projections of
    ``nn.MultiheadAttention``: autocast casts them on every call, and cannot keep the casts
    under ``inference_mode``. A CLIP's text tower (modules of ``backbone.clip`` outside
    ``backbone.visual``) never runs on images and is left out.
    """
    clip, visual = getattr(backbone, 'clip', None), getattr(backbone, 'visual', None)
    text = set()
    if isinstance(clip, nn.Module) and isinstance(visual, nn.Module):
        text = {id(m) for m in clip.modules()} - {id(m) for m in visual.modules()}
    names = {nn.MultiheadAttention: ('in_proj_weight', 'in_proj_bias')}
    out = {}
    for prefix, module in backbone.named_modules():
        if id(module) in text:
            continue
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


def slide_windows(height: int, width: int, crop: int, stride: int
                  ) -> list[tuple[int, int, int, int]]:
    """The reference sliding-window grid, as (y1, y2, x1, x2) boxes.

    A window is ``crop`` wide unless the image is smaller; the last row and column are shifted
    back inside the image, so windows overlap more at the far edges.
    """
    h_grids = max(height - crop + stride - 1, 0) // stride + 1
    w_grids = max(width - crop + stride - 1, 0) // stride + 1
    boxes = []
    for i in range(h_grids):
        for j in range(w_grids):
            y2, x2 = min(i * stride + crop, height), min(j * stride + crop, width)
            boxes.append((max(y2 - crop, 0), y2, max(x2 - crop, 0), x2))
    return boxes


def centred_padding(height: int, width: int, multiple: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zero padding that makes H and W multiples of ``multiple``.

    As ClearCLIP clearclip_segmentor.py ``compute_padsize``: the extra pixel goes right/bottom.
    """
    extra_w, extra_h = -width % multiple, -height % multiple
    return extra_w // 2, extra_w - extra_w // 2, extra_h // 2, extra_h - extra_h // 2


def merge_synonyms(probs: Tensor, query_to_class: Tensor, num_classes: int) -> Tensor:
    """Class probabilities: the max over each class's queries, (Q, H, W) -> (K, H, W)."""
    if probs.shape[0] == num_classes:
        return probs
    index = query_to_class.view(-1, 1, 1).expand_as(probs)
    out = probs.new_full((num_classes, *probs.shape[1:]), float('-inf'))
    return out.scatter_reduce(0, index, probs, reduce='amax')


def apply_area_threshold(probs: Tensor, area_thd: float) -> Tensor:
    """SCLIP's ``area_thd``: zero every non-background class whose argmax area is at most
    ``area_thd`` of all non-background predicted pixels (class 0 is the background).

    Args:
        probs: (K, H, W) class probabilities.

    Returns:
        (K, H, W) with the small classes' maps zeroed.
    """
    pred = probs.argmax(0)
    area = torch.bincount(pred.flatten(), minlength=probs.shape[0])[1:].to(probs.dtype)  # (K-1,)
    keep = (area > area_thd * area.sum()).to(probs.dtype)  # SCLIP: strict '>'
    return torch.cat([probs[:1], probs[1:] * keep[:, None, None]])


@MODELS.register_module()
class OpenVocabSegmentor(BaseSegmentor):
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
        prob_thd: pixels whose max class probability is below it become class 0.
        area_thd: SCLIP's small-class suppression (None: off).
        slide_crop: window size; 0 encodes the whole image at once.
        slide_stride: window stride.
        pad_to_patch: zero-pad each window, centred, to a multiple of the output stride
            (ClearCLIP, ProxyCLIP). Otherwise pixels beyond the last whole patch are ignored and
            the logits stretched over them, as SCLIP/NACLIP's strided conv does.
        pad_multiple: with ``pad_to_patch``, pad to a multiple of lcm(pad_multiple, output
            stride) instead (ProxyCLIP: 56, so that its proxy's grid divides the window too).
        window_batch: windows per forward pass (bounds memory, not the window count).
        dtype: precision of the image encoder: ``'fp32'``; ``'bf16'`` (autocast, CPU or CUDA)
            or ``'fp16'`` (CUDA autocast). Text embeddings, cosine, upsampling, window merging
            and softmax are float32 in every case.
        refiner: config of a refiner applied to the merged scores at the original image size,
            ``refiner(image, scores)``, e.g. ``dict(type='PAMRRefiner')`` (NACLIP).
        feature_refiner: config of a module applied to each window batch's dense features
            before the cosine, ``feature_refiner(feats, dense, backbone)`` with the backbone's
            :class:`DenseOutput`, e.g. ``dict(type='CLIPDINOiserRefiner', ...)``. With
            ``window_softmax``, its ``override_background(probs, dense, backbone)``, if it has
            one, edits the window probabilities (CLIP-DINOiser's FOUND override).
        patch_refiner: config of a module applied to each window batch's patch-grid cosine
            logits, ``patch_refiner(logits, dense, backbone)``; it may return them at the
            window's size. E.g. ``dict(type='CLIPtraseRegionRefiner')``,
            ``dict(type='KSPDRefiner')`` (MaskCLIP+). Its ``set_classifier(classifier)``, if it
            has one, is called whenever the vocabulary changes.
        window_softmax: average each window's class probabilities softmax(logit_scale·cos)
            instead of its raw cosine (CLIP-DINOiser runs mmseg's slide inference over softmax
            outputs); :meth:`postprocess` then takes the merged scores as probabilities.
        data_preprocessor: defaults to CLIP's mean/std with BGR->RGB (mmseg loads BGR).
    """

    def __init__(self, backbone: dict, vocabulary: str | Sequence | None = None,
                 name_sep: str = ', ', templates: str | Sequence[str] = 'openai_imagenet',
                 logit_scale: float = 40.0, prob_thd: float = 0.0,
                 area_thd: float | None = None, slide_crop: int = 224,
                 slide_stride: int = 112, pad_to_patch: bool = False, window_batch: int = 8,
                 dtype: str = 'fp32', refiner: dict | None = None,
                 feature_refiner: dict | None = None, patch_refiner: dict | None = None,
                 pad_multiple: int | None = None, window_softmax: bool = False,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmseg.SegDataPreProcessor', mean=list(CLIP_MEAN),
                                     std=list(CLIP_STD), bgr_to_rgb=True)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.refiner = MODELS.build(refiner) if refiner is not None else None
        self.feature_refiner = (MODELS.build(feature_refiner) if feature_refiner is not None
                                else None)
        self.patch_refiner = MODELS.build(patch_refiner) if patch_refiner is not None else None
        if slide_crop < 0 or (slide_crop and slide_stride <= 0) or window_batch < 1:
            raise ValueError(f'OpenVocabSegmentor: slide_crop={slide_crop}, '
                             f'slide_stride={slide_stride}, window_batch={window_batch}; '
                             'expected crop >= 0 (0 = whole image), stride > 0, batch >= 1')
        if pad_multiple is not None and (not pad_to_patch or pad_multiple < 1):
            raise ValueError(f'OpenVocabSegmentor: pad_multiple={pad_multiple} needs '
                             'pad_to_patch=True and a positive multiple')
        if dtype not in PRECISIONS:
            raise ValueError(f'OpenVocabSegmentor: dtype={dtype!r}; expected one of '
                             f'{sorted(PRECISIONS)}')
        self.templates = templates
        self.name_sep = name_sep
        self.logit_scale = logit_scale
        self.prob_thd = prob_thd
        self.area_thd = area_thd
        self.slide_crop = slide_crop
        self.slide_stride = slide_stride
        self.pad_to_patch = pad_to_patch
        self.pad_multiple = pad_multiple
        self.window_softmax = window_softmax
        self.window_batch = window_batch
        self.dtype = dtype
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
            source = self.backbone.source
            model_id = None
            if source.checkpoint is not None:
                model_id = f'{source.model}|{file_fingerprint(source.checkpoint)}'
            self._classifiers[key] = build_text_classifier(
                self.backbone.clip, self._tokenizer(), vocabulary, self.templates,
                model_id=model_id)
        self.classifier = self._classifiers[key]
        if hasattr(self.patch_refiner, 'set_classifier'):
            self.patch_refiner.set_classifier(self.classifier)

    def _tokenizer(self):
        name = self.backbone.source.model
        # Model-config files and inferred OpenAI architectures use CLIP's BPE tokenizer.
        return open_clip.get_tokenizer(name if name in open_clip.list_models() else 'ViT-B-16')

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
        amp_dtype = PRECISIONS[self.dtype]
        device = crops.device.type
        if amp_dtype is torch.float16 and device != 'cuda':
            raise ValueError(f"OpenVocabSegmentor: dtype='fp16' autocasts on CUDA only; the "
                             f"input is on {device!r}: use dtype='bf16' (or 'fp32') there")
        encoder = _DenseForward(self.backbone)
        if amp_dtype is None:
            dense = encoder(crops)
        else:
            with torch.autocast(device, dtype=amp_dtype):
                # the casts autocast would make, made once (_cast_weights). No weight tying:
                # the backbone reaches one module by several names (blocks, clip.visual...),
                # and tie_weights=True then restores some of them to the cast copy.
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

    def window_logits(self, crops: Tensor) -> Tensor:
        """Scores of same-sized windows, upsampled to the window size.

        Args:
            crops: (n, 3, h, w) CLIP-normalised windows, encoded ``window_batch`` at a time.

        Returns:
            (n, Q, h, w) float32: raw cosine similarities, as the patch refiner leaves them, or
            class probabilities with ``window_softmax``.
        """
        classifier = self._require_classifier()
        n, _, h, w = crops.shape
        stride = self.backbone.output_stride
        if self.pad_to_patch:
            pad = centred_padding(h, w, math.lcm(stride, self.pad_multiple or stride))
            crops = F.pad(crops, pad)
        else:
            pad = (0, 0, 0, 0)
            crops = crops[:, :, :h - h % stride, :w - w % stride]
        out = []
        for chunk in crops.split(self.window_batch):
            dense = self._encode(chunk)
            feats = dense.feats
            if self.feature_refiner is not None:
                feats = self.feature_refiner(feats, dense, self.backbone)
            feats = F.normalize(feats, dim=1)
            # contiguous: for b > 1 einsum returns channels-last strides, and bilinear
            # upsampling of those rounds differently from a one-window loop's
            logits = torch.einsum('behw,qe->bqhw', feats,
                                  classifier.embeddings.float()).contiguous()  # (b, Q, h', w')
            if self.patch_refiner is not None:
                logits = self.patch_refiner(logits, dense, self.backbone)
            if self.window_softmax:
                logits = torch.softmax(self.logit_scale * logits, dim=1)
                override = getattr(self.feature_refiner, 'override_background', None)
                if override is not None:
                    logits = override(logits, dense, self.backbone)
            size = (h + pad[2] + pad[3], w + pad[0] + pad[1])
            logits = F.interpolate(logits, size=size, mode='bilinear', align_corners=False)
            out.append(logits[:, :, pad[2]:pad[2] + h, pad[0]:pad[0] + w])
        return torch.cat(out)

    def slide_inference(self, image: Tensor) -> Tensor:
        """(1, 3, H, W) -> (1, Q, H, W) float32: windows' scores summed, divided by their count.

        Windows are cut, encoded and added into the canvas ``window_batch`` at a time.
        """
        _, _, H, W = image.shape
        boxes = slide_windows(H, W, self.slide_crop, self.slide_stride)
        canvas = image.new_zeros((1, self.num_queries, H, W), dtype=torch.float32)
        count = image.new_zeros((1, 1, H, W), dtype=torch.float32)
        for start in range(0, len(boxes), self.window_batch):
            batch = boxes[start:start + self.window_batch]
            crops = torch.cat([image[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in batch])
            logits = self.window_logits(crops)  # (b, Q, h, w)
            for (y1, y2, x1, x2), window in zip(batch, logits):
                canvas[0, :, y1:y2, x1:x2] += window
                count[0, :, y1:y2, x1:x2] += 1
        return canvas / count

    @torch.inference_mode()
    def inference(self, image: Tensor, ori_shape: Sequence[int]) -> Tensor:
        """Scores of one image at its original size.

        Args:
            image: (1, 3, H, W) CLIP-normalised, resized by the pipeline.
            ori_shape: (H0, W0) size to return the scores at.

        Returns:
            (1, Q, H0, W0) cosine logits (probabilities with ``window_softmax``), refined if a
            refiner is set.
        """
        logits = (self.slide_inference(image) if self.slide_crop > 0
                  else self.window_logits(image))
        size = tuple(int(s) for s in ori_shape[:2])
        if tuple(logits.shape[2:]) != size:  # at scale 1 bilinear is the identity: skip it
            logits = F.interpolate(logits, size=size, mode='bilinear', align_corners=False)
        if self.refiner is not None:
            # Applied to the raw cosine, before the logit scale (NACLIP naclip.py@0cac3a6).
            image = F.interpolate(image, size=size, mode='bilinear', align_corners=False)
            logits = self.refiner(image, logits)
        return logits

    def postprocess(self, logits: Tensor) -> tuple[Tensor, Tensor]:
        """Class probabilities and labels from one image's query scores.

        Args:
            logits: (Q, H, W) raw cosine logits, or probabilities with ``window_softmax``.

        Returns:
            probs (K, H, W) after the synonym max (and area_thd), labels (H, W) int64.
        """
        classifier = self._require_classifier()
        probs = (logits.float() if self.window_softmax
                 else torch.softmax(self.logit_scale * logits.float(), dim=0))  # over queries
        probs = merge_synonyms(probs, classifier.query_to_class, classifier.num_classes)
        if self.area_thd is not None:
            probs = apply_area_threshold(probs, self.area_thd)
        conf, labels = probs.max(0)
        labels[conf < self.prob_thd] = 0
        return probs, labels

    # ----------------------------------------------------------------- mmseg contract
    def _metas(self, inputs: Tensor, data_samples: Sequence[SegDataSample] | None) -> list[dict]:
        if data_samples is not None:
            return [sample.metainfo for sample in data_samples]
        shape = tuple(inputs.shape[2:])
        return [dict(ori_shape=shape, img_shape=shape)] * inputs.shape[0]

    @torch.inference_mode()
    def predict(self, inputs: Tensor, data_samples: Sequence[SegDataSample] | None = None
                ) -> list[SegDataSample]:
        """Segment a batch; each image is cropped to its ``img_shape`` (batch padding)."""
        metas = self._metas(inputs, data_samples)
        results = []
        for i, meta in enumerate(metas):
            h, w = meta.get('img_shape', inputs.shape[2:])[:2]
            logits = self.inference(inputs[i:i + 1, :, :h, :w], meta['ori_shape'])
            probs, labels = self.postprocess(logits[0])
            sample = data_samples[i] if data_samples is not None else SegDataSample()
            sample.set_data(dict(seg_logits=PixelData(data=probs),
                                 pred_sem_seg=PixelData(data=labels[None])))
            results.append(sample)
        return results

    def _forward(self, inputs: Tensor, data_samples=None) -> Tensor:
        """Raw cosine logits (B, Q, H, W) at the input size (mmseg ``mode='tensor'``)."""
        metas = self._metas(inputs, data_samples)
        return torch.cat([self.inference(inputs[i:i + 1], meta['img_shape'])
                          for i, meta in enumerate(metas)])

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Dense joint-space features (B, E, h, w) of the backbone."""
        return self.backbone.encode_dense(inputs)

    def encode_decode(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        """Cosine logits (B, Q, H, W) at each image's ``ori_shape`` (mmseg contract)."""
        return torch.cat([self.inference(inputs[i:i + 1], meta['ori_shape'])
                          for i, meta in enumerate(batch_img_metas)])

    def loss(self, inputs: Tensor, data_samples: Sequence[SegDataSample]) -> dict:
        raise RuntimeError('OpenVocabSegmentor is training-free and has no loss; train a '
                           'trained method (e.g. CLIP-DINOiser) with tools/train.py instead')
