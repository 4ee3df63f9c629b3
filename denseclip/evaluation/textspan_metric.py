"""Pixel accuracy, mIoU over {background, foreground} and mAP, as TextSpan reports them on
ImageNet-Segmentation (clip_text_span compute_segmentations.py and
utils/segmentation_utils.py@49f70f3, after Chefer et al.)::

    test_evaluator = dict(type='ForegroundSegMetric')

Every pixel is labelled (the masks are 0/1). Pixel accuracy and each class's IoU are ratios of
counts summed over the dataset (``total_correct / total_label``, ``total_inter /
total_union``, with ``np.spacing(1)`` in the denominator); mAP is the mean over images of each
image's average precision of the two-channel score map [1 − map, map] against the one-hot
mask (sklearn ``average_precision_score`` on the flattened channels, NaN -> 0).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from sklearn.metrics import average_precision_score
from torch import Tensor

from ..registry import METRICS


def _check(pred: Tensor, target: Tensor, num_classes: int = 2) -> None:
    if pred.shape != target.shape:
        raise ValueError(f'ForegroundSegMetric: prediction {tuple(pred.shape)} and label '
                         f'{tuple(target.shape)} differ in shape')
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f'ForegroundSegMetric: labels must lie in [0, {num_classes}) '
                         f'(0 background, 1 foreground); found values in '
                         f'[{int(target.min())}, {int(target.max())}]')


def pixel_correct(pred: Tensor, target: Tensor) -> tuple[int, int]:
    """Correct and labelled pixels (``batch_pix_accuracy``: every pixel of a 0/1 mask is
    labelled).

    Args:
        pred, target: (H, W) 0/1 labels.
    """
    _check(pred, target)
    return int((pred == target).sum()), int(target.numel())


def intersection_union(pred: Tensor, target: Tensor, num_classes: int = 2
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per-class intersection and union pixel counts (``batch_intersection_union``).

    Args:
        pred, target: (H, W) labels in [0, num_classes).

    Returns:
        intersection (num_classes,), union (num_classes,), int64.
    """
    _check(pred, target, num_classes)
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    inter = torch.bincount(pred[pred == target], minlength=num_classes)
    area_pred = torch.bincount(pred, minlength=num_classes)
    area_label = torch.bincount(target, minlength=num_classes)
    return inter.numpy(), (area_pred + area_label - inter).numpy()


def average_precision(scores: Tensor, target: Tensor) -> float:
    """One image's AP as ``get_ap_scores``@49f70f3: the (2, H, W) scores against the one-hot
    (2, H, W) target, flattened together, NaN scores and result -> 0.

    Args:
        scores: (2, H, W) [background, foreground] scores.
        target: (H, W) 0/1 labels.
    """
    _check(scores[0], target)
    onehot = torch.stack([target == 0, target == 1]).reshape(-1).numpy()
    flat = torch.nan_to_num(scores.float(), nan=0.0).reshape(-1).numpy()
    return float(np.nan_to_num(average_precision_score(onehot, flat)))


@METRICS.register_module()
class ForegroundSegMetric(BaseMetric):
    """Pixel accuracy, per-class IoU, mIoU and mAP of a binary segmenter, in percent.

    Reads ``pred_sem_seg`` (0/1), ``seg_logits`` ((2, H, W) scores for mAP) and
    ``gt_sem_seg`` of each data sample, all of the same size.

    Returns (``compute_metrics``): ``pixAcc``, ``mIoU``, ``mAP``, ``IoU.background``,
    ``IoU.foreground`` (the released pixAcc, mIoU and mAP ×100).
    """
    default_prefix = None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'][0].cpu()
            target = sample['gt_sem_seg']['data'][0].cpu().to(pred.dtype)
            scores = sample['seg_logits']['data'].cpu()
            if scores.shape[0] != 2:
                raise ValueError(f'ForegroundSegMetric: seg_logits {tuple(scores.shape)}; '
                                 'expected (2, H, W) [background, foreground] scores')
            correct, labelled = pixel_correct(pred, target)
            inter, union = intersection_union(pred, target)
            self.results.append((correct, labelled, inter, union,
                                 average_precision(scores, target)))

    def compute_metrics(self, results: list) -> dict[str, float]:
        correct, labelled, inter, union, ap = zip(*results)
        eps = np.spacing(1, dtype=np.float64)
        pix_acc = np.sum(correct, dtype=np.int64) / (eps + np.sum(labelled, dtype=np.int64))
        iou = np.sum(inter, axis=0, dtype=np.int64) / (eps + np.sum(union, axis=0,
                                                                      dtype=np.int64))
        return OrderedDict([('pixAcc', 100 * float(pix_acc)), ('mIoU', 100 * float(iou.mean())),
                            ('mAP', 100 * float(np.mean(ap))),
                            ('IoU.background', 100 * float(iou[0])),
                            ('IoU.foreground', 100 * float(iou[1]))])
