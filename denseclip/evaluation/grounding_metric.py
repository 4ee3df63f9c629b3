"""Phrase-localization metrics: box accuracy at an IoU threshold, and the pointing game.

* :class:`BoxAccuracyMetric`: the fraction of phrases whose predicted box has IoU > ``iou_thr``
  with the ground truth (pals-ttic/adapting-CLIP@d2026f3 ``utils/grounding_evaluator.py``; the
  IoU of ``utils/bbox_tools.py``: areas ``(x2 - x1) * (y2 - y1)``, boxes as given).
* :class:`PointingGameMetric`: the fraction whose heat-map maximum lies inside the ground-truth
  box, borders included (Zhang et al., "Top-down Neural Attention by Excitation Backprop",
  ECCV 2016; no tolerance margin).

Both read the data samples of :class:`~denseclip.models.grounding.PhraseGroundingModel`
(``pred_bbox``, ``pred_point``, ``gt_bbox``) and report percentages::

    test_evaluator = [dict(type='BoxAccuracyMetric'), dict(type='PointingGameMetric')]
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from ..registry import METRICS

__all__ = ['box_iou', 'BoxAccuracyMetric', 'PointingGameMetric']


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of matched boxes, (K, 4) ``(x1, y1, x2, y2)`` each -> (K,) (bbox_tools.py@d2026f3
    ``matched_bbox_iou``: no +1 on the sides)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    wh = (np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2])).clip(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@METRICS.register_module()
class BoxAccuracyMetric(BaseMetric):
    """Accuracy (%) of predicted boxes at IoU > ``iou_thr`` (key ``acc@{iou_thr}``), and the
    mean IoU (%, ``mIoU_box``).

    Args:
        iou_thr: the threshold, strictly exceeded (0.5, the paper's ``--iou_thr``).
    """

    default_prefix = 'grounding'

    def __init__(self, iou_thr: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 <= iou_thr < 1:
            raise ValueError(f'BoxAccuracyMetric: iou_thr={iou_thr}; expected 0 <= iou_thr < 1')
        self.iou_thr = iou_thr

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            self.results.append((sample['pred_bbox'], sample['gt_bbox']))

    def compute_metrics(self, results: list) -> dict[str, float]:
        if not results:
            raise ValueError('BoxAccuracyMetric: no predictions to evaluate')
        pred, gt = zip(*results)
        iou = box_iou(np.array(pred), np.array(gt))
        return {f'acc@{self.iou_thr}': float(np.round((iou > self.iou_thr).mean() * 100, 2)),
                'mIoU_box': float(np.round(iou.mean() * 100, 2))}


@METRICS.register_module()
class PointingGameMetric(BaseMetric):
    """Pointing-game accuracy (%): the heat-map maximum inside the ground-truth box (key
    ``pointing``)."""

    default_prefix = 'grounding'

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            x, y = sample['pred_point']
            x1, y1, x2, y2 = sample['gt_bbox']
            self.results.append(bool(x1 <= x <= x2 and y1 <= y <= y2))

    def compute_metrics(self, results: list) -> dict[str, float]:
        if not results:
            raise ValueError('PointingGameMetric: no predictions to evaluate')
        return {'pointing': float(np.round(np.mean(results) * 100, 2))}
