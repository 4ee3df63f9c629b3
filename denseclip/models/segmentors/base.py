"""What every denseclip segmentor shares: the slide grid, window merging and post-processing.

Call graph (mmseg ``BaseSegmentor`` contract)::

    predict(inputs, data_samples)
      ├─ text_for(data_samples) -> (vocabulary, text)         the batch's queries
      └─ per image: inference(img, ori_shape, text)
           ├─ [resize_to] slide_inference() | window_logits(image, text)  scores (Q, H, W)
           │    └─ per batch of windows: window_logits(crops, text) -> add into the canvas
           ├─ [global_view] average with the whole image scored as one window (CAT-Seg)
           ├─ resize to ori_shape, optional refiner (PAMR) on the merged scores
           └─ postprocess(): probabilities(scores) over queries -> max over synonyms
                             -> area_thd (SCLIP) -> argmax -> prob_thd

Subclasses say how windows are scored (:meth:`SlideSegmentor.window_logits`) and where the
text comes from (:meth:`SlideSegmentor.text_for`): the training-free
:class:`~denseclip.models.segmentors.OpenVocabSegmentor` (cosine with a cached classifier) and
the trained :class:`~denseclip.models.segmentors.OpenVocabEncoderDecoder` (a decode head).

Slide windows follow the reference grid of mmseg's ``slide_inference`` (also SCLIP, NACLIP,
ClearCLIP, ProxyCLIP, DenseCLIP; SCLIP clip_segmentor.py@d84d4ab):
``h_grids = max(H - crop + stride - 1, 0) // stride + 1``, the last window shifted back inside
the image; but the windows of an image are encoded in batches of ``window_batch`` instead of one
at a time, and each batch is added into the canvas before the next is encoded, so memory grows
with ``window_batch``, not with the window count.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.structures import SegDataSample
from torch import Tensor

from denseclip.models.refiner_protocols import ScoreRefiner, check_refiner
from denseclip.models.text import Vocabulary
from denseclip.registry import MODELS

logger = logging.getLogger(__name__)

# OpenAI CLIP's normalisation on the 0-255 scale, RGB (every harness's SegDataPreProcessor).
CLIP_MEAN = (122.771, 116.746, 104.094)
CLIP_STD = (68.501, 66.632, 70.323)

# Autocast dtype of the image encoder per ``dtype`` setting (None: plain float32).
PRECISIONS: dict[str, torch.dtype | None] = {
    'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


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


class SlideSegmentor(BaseSegmentor):
    """Sliding-window inference, window merging and post-processing (see the module doc).

    Args:
        logit_scale: temperature of the softmax over queries in :meth:`probabilities`.
        prob_thd: pixels whose max class probability is below it become class 0.
        area_thd: SCLIP's small-class suppression (None: off).
        renormalize: divide the class probabilities by their sum after the max over synonyms,
            as NACLIP does (they then sum to 1 per pixel); labels and ``prob_thd`` use the
            probabilities before it, as there. SCLIP and ClearCLIP keep the merged ones.
        slide_crop: window size; 0 scores the whole image at once.
        slide_stride: window stride.
        pad_to_patch: zero-pad each window, centred, to a multiple of the backbone's output
            stride (ClearCLIP, ProxyCLIP). Otherwise pixels beyond the last whole patch are
            ignored and the scores stretched over them, as SCLIP/NACLIP's strided conv does
            (a side shorter than one patch is zero-padded to one).
        pad_multiple: with ``pad_to_patch``, pad to a multiple of lcm(pad_multiple, output
            stride) instead (ProxyCLIP: 56, so that its proxy's grid divides the window too).
        window_batch: windows per forward pass (bounds memory, not the window count).
        dtype: precision of the image path: ``'fp32'``; ``'bf16'`` (autocast, CPU or CUDA) or
            ``'fp16'`` (CUDA autocast). Upsampling, merging and softmax are float32.
        refiner: a :class:`~denseclip.models.refiner_protocols.ScoreRefiner` config, applied
            to the merged scores at the original image size, ``refiner(image, scores)``, e.g.
            ``dict(type='PAMRRefiner')`` (NACLIP).
        resize_to: (h, w) the image is resized to (bilinear, aspect not kept) before the
            windows are cut (CAT-Seg: 640 x 640); None slides over the image as given.
        global_view: also score the whole image resized to one ``slide_crop`` window, and
            average it (resized back) with the windows' merge: (windows + global) / 2 (CAT-Seg).
        data_preprocessor: defaults to CLIP's mean/std with BGR->RGB (mmseg loads BGR).
    """

    def __init__(self, *, logit_scale: float = 1.0, prob_thd: float = 0.0,
                 area_thd: float | None = None, renormalize: bool = False,
                 slide_crop: int = 224,
                 slide_stride: int = 112, pad_to_patch: bool = False,
                 pad_multiple: int | None = None, window_batch: int = 8, dtype: str = 'fp32',
                 refiner: dict | None = None, resize_to: Sequence[int] | None = None,
                 global_view: bool = False, data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmseg.SegDataPreProcessor', mean=list(CLIP_MEAN),
                                     std=list(CLIP_STD), bgr_to_rgb=True)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        name = type(self).__name__
        if slide_crop < 0 or (slide_crop and slide_stride <= 0) or window_batch < 1:
            raise ValueError(f'{name}: slide_crop={slide_crop}, slide_stride={slide_stride}, '
                             f'window_batch={window_batch}; expected crop >= 0 (0 = whole '
                             'image), stride > 0, batch >= 1')
        if pad_multiple is not None and (not pad_to_patch or pad_multiple < 1):
            raise ValueError(f'{name}: pad_multiple={pad_multiple} needs pad_to_patch=True '
                             'and a positive multiple')
        if global_view and not slide_crop:
            raise ValueError(f'{name}: global_view=True needs slide windows (slide_crop > 0): '
                             'the global view is the image resized to one window')
        if dtype not in PRECISIONS:
            raise ValueError(f'{name}: dtype={dtype!r}; expected one of {sorted(PRECISIONS)}')
        self.refiner = check_refiner(MODELS.build(refiner) if refiner is not None else None,
                                     ScoreRefiner, 'refiner')
        self.logit_scale = logit_scale
        self.prob_thd = prob_thd
        self.area_thd = area_thd
        self.renormalize = renormalize
        self.slide_crop = slide_crop
        self.slide_stride = slide_stride
        self.pad_to_patch = pad_to_patch
        self.pad_multiple = pad_multiple
        self.window_batch = window_batch
        self.dtype = dtype
        self.resize_to = None if resize_to is None else tuple(resize_to)
        self.global_view = global_view

    def warn_vocabulary_memory(self, num_queries: int, limit_gib: float = 1.0) -> float:
        """Warn when a batch of windows' float32 scores for ``num_queries`` queries exceeds
        ``limit_gib``; returns that size in GiB.

        Scores are per query and pixel: each batch of ``window_batch`` windows holds
        window_batch x Q x crop² x 4 bytes, and an H x W image's canvas Q x H x W x 4 more (a
        2000-name vocabulary at 448² took +4.6 GB). ``window_batch`` bounds the first.
        """
        crop = self.slide_crop or 448
        gib = self.window_batch * num_queries * crop * crop * 4 / 2 ** 30
        if gib > limit_gib:
            logger.warning(
                '%s: %d text queries: each batch of %d windows of %d² holds %.1f GiB of float32 '
                'scores, and an H x W image\'s canvas %d x H x W x 4 bytes more (%.1f GiB at '
                '448²); lower window_batch to cut the first', type(self).__name__,
                num_queries, self.window_batch, crop, gib, num_queries,
                num_queries * 448 * 448 * 4 / 2 ** 30)
        return gib

    # ----------------------------------------------------------------- what subclasses say
    def text_for(self, data_samples: Sequence[SegDataSample] | None = None
                 ) -> tuple[Vocabulary, Tensor]:
        """The vocabulary of a batch and its text embeddings, as :meth:`window_logits` takes
        them."""
        raise NotImplementedError

    def score_windows(self, crops: Tensor, text: Tensor) -> Tensor:
        """Scores (b, Q, h', w') of a batch of padded windows, at any resolution (the caller
        upsamples them to the window)."""
        raise NotImplementedError

    def amp_dtype(self, device: str) -> torch.dtype | None:
        """The autocast dtype of ``dtype`` on ``device`` (None: plain float32)."""
        amp_dtype = PRECISIONS[self.dtype]
        if amp_dtype is torch.float16 and device != 'cuda':
            raise ValueError(f"{type(self).__name__}: dtype='fp16' autocasts on CUDA only; the "
                             f"input is on {device!r}: use dtype='bf16' (or 'fp32') there")
        return amp_dtype

    def pixels(self, image: Tensor) -> Tensor:
        """(B, 3, H, W) network input -> the same pixels, float RGB on the 0-255 scale: the data
        preprocessor's normalisation undone (for encoders that see the image their own way:
        CorrCLIP's mask generator, Trident's SAM)."""
        pre = self.data_preprocessor
        mean, std = getattr(pre, 'mean', None), getattr(pre, 'std', None)
        if mean is None or std is None:
            raise ValueError(f'{type(self).__name__}: the data preprocessor normalises with no '
                             'mean/std, so the pixels cannot be recovered')
        shape = (1, 3, 1, 1)
        return (image.float() * std.view(shape).to(image.device)
                + mean.view(shape).to(image.device))

    # ----------------------------------------------------------------- windows
    def window_logits(self, crops: Tensor, text: Tensor | None = None) -> Tensor:
        """Scores of same-sized windows, upsampled to the window size.

        Args:
            crops: (n, 3, h, w) normalised windows, scored ``window_batch`` at a time.
            text: the text embeddings of :meth:`text_for` (default: its own).

        Returns:
            (n, Q, h, w) float32 scores, as :meth:`score_windows` gives them.
        """
        if text is None:
            text = self.text_for()[1]
        n, _, h, w = crops.shape
        stride = self.backbone.output_stride
        if self.pad_to_patch:
            pad = centred_padding(h, w, math.lcm(stride, self.pad_multiple or stride))
            crops = F.pad(crops, pad)
        else:
            # A side shorter than one patch (a 10 x 3000 picture) is zero-padded to one,
            # bottom / right; longer sides keep their whole patches and the scores are
            # stretched over the rest, as SCLIP/NACLIP's strided patch conv does.
            pad = (0, max(stride - w, 0), 0, max(stride - h, 0))
            crops = F.pad(crops, pad)
            hp, wp = crops.shape[2:]
            crops = crops[:, :, :hp - hp % stride, :wp - wp % stride]
        out = []
        for chunk in crops.split(self.window_batch):
            logits = self.score_windows(chunk, text).float()
            size = (h + pad[2] + pad[3], w + pad[0] + pad[1])
            logits = F.interpolate(logits, size=size, mode='bilinear', align_corners=False)
            out.append(logits[:, :, pad[2]:pad[2] + h, pad[0]:pad[0] + w])
        # slide_inference passes one window batch at a time: no copy of its (b, Q, h, w) scores
        return out[0] if len(out) == 1 else torch.cat(out)

    def slide_inference(self, image: Tensor, text: Tensor | None = None) -> Tensor:
        """(1, 3, H, W) -> (1, Q, H, W) float32: windows' scores summed, divided by their count.

        Windows are cut, scored and added into the canvas ``window_batch`` at a time.
        """
        if text is None:
            text = self.text_for()[1]
        _, _, H, W = image.shape
        boxes = slide_windows(H, W, self.slide_crop, self.slide_stride)
        canvas = count = None
        for start in range(0, len(boxes), self.window_batch):
            batch = boxes[start:start + self.window_batch]
            crops = torch.cat([image[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in batch])
            logits = self.window_logits(crops, text)  # (b, Q, h, w)
            if canvas is None:
                canvas = image.new_zeros((1, logits.shape[1], H, W), dtype=torch.float32)
                count = image.new_zeros((1, 1, H, W), dtype=torch.float32)
            for (y1, y2, x1, x2), window in zip(batch, logits):
                canvas[0, :, y1:y2, x1:x2] += window
                count[0, :, y1:y2, x1:x2] += 1
        return canvas.div_(count)  # in place: the canvas is ours (Q x H x W, no second copy)

    @torch.inference_mode()
    def inference(self, image: Tensor, ori_shape: Sequence[int], text: Tensor | None = None
                  ) -> Tensor:
        """Scores of one image at its original size.

        Args:
            image: (1, 3, H, W) normalised, resized by the pipeline.
            ori_shape: (H0, W0) size to return the scores at.
            text: the text embeddings of :meth:`text_for` (default: its own).

        Returns:
            (1, Q, H0, W0) scores, refined if a refiner is set.
        """
        if text is None:
            text = self.text_for()[1]
        view = image
        if self.resize_to is not None:
            view = F.interpolate(image, size=self.resize_to, mode='bilinear', align_corners=False)
        logits = (self.slide_inference(view, text) if self.slide_crop > 0
                  else self.window_logits(view, text))
        if self.global_view:
            whole = F.interpolate(image, size=(self.slide_crop, self.slide_crop),
                                  mode='bilinear', align_corners=False)
            whole = F.interpolate(self.window_logits(whole, text), size=logits.shape[2:],
                                  mode='bilinear', align_corners=False)
            logits = (logits + whole) / 2
        size = tuple(int(s) for s in ori_shape[:2])
        if tuple(logits.shape[2:]) != size:  # at scale 1 bilinear is the identity: skip it
            logits = F.interpolate(logits, size=size, mode='bilinear', align_corners=False)
        if self.refiner is not None:
            # Applied to the raw cosine, before the logit scale (NACLIP naclip.py@0cac3a6).
            image = F.interpolate(image, size=size, mode='bilinear', align_corners=False)
            logits = self.refiner(image, logits)
        return logits

    # ----------------------------------------------------------------- post-processing
    def probabilities(self, logits: Tensor) -> Tensor:
        """(Q, H, W) query probabilities: softmax(logit_scale · scores) over queries."""
        return torch.softmax(self.logit_scale * logits.float(), dim=0)

    def postprocess(self, logits: Tensor, vocabulary: Vocabulary | None = None
                    ) -> tuple[Tensor, Tensor]:
        """Class probabilities and labels from one image's query scores.

        Args:
            logits: (Q, H, W) scores from :meth:`inference`.
            vocabulary: the K classes the Q queries name (default: :meth:`text_for`'s).

        Returns:
            probs (K, H, W) after the synonym max (and area_thd, renormalize), labels (H, W)
            int64.
        """
        if vocabulary is None:
            vocabulary = self.text_for()[0]
        probs = merge_synonyms(self.probabilities(logits),
                               vocabulary.query_to_class.to(logits.device),
                               vocabulary.num_classes)
        if self.area_thd is not None:
            probs = apply_area_threshold(probs, self.area_thd)
        conf, labels = probs.max(0)
        labels[conf < self.prob_thd] = 0
        if self.renormalize:
            probs = probs / probs.sum(0, keepdim=True).clamp_min(1e-12)
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
        vocabulary, text = self.text_for(data_samples)
        results = []
        for i, meta in enumerate(self._metas(inputs, data_samples)):
            h, w = meta.get('img_shape', inputs.shape[2:])[:2]
            logits = self.inference(inputs[i:i + 1, :, :h, :w], meta['ori_shape'], text)
            probs, labels = self.postprocess(logits[0], vocabulary)
            sample = data_samples[i] if data_samples is not None else SegDataSample()
            sample.set_data(dict(seg_logits=PixelData(data=probs),
                                 pred_sem_seg=PixelData(data=labels[None])))
            results.append(sample)
        return results

    def _forward(self, inputs: Tensor, data_samples=None) -> Tensor:
        """Scores (B, Q, H, W) at the input size (mmseg ``mode='tensor'``)."""
        text = self.text_for(data_samples)[1]
        return torch.cat([self.inference(inputs[i:i + 1], meta['img_shape'], text)
                          for i, meta in enumerate(self._metas(inputs, data_samples))])

    def encode_decode(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        """Scores (B, Q, H, W) at each image's ``ori_shape`` (mmseg contract)."""
        text = self.text_for()[1]
        return torch.cat([self.inference(inputs[i:i + 1], meta['ori_shape'], text)
                          for i, meta in enumerate(batch_img_metas)])

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Dense joint-space features (B, E, h, w) of the backbone."""
        return self.backbone.encode_dense(inputs)
