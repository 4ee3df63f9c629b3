"""IoU on the seen and unseen classes of an open-vocabulary split, and their harmonic mean.

Methods that train on part of a vocabulary (the **seen** classes) are judged on the classes they
never saw as well: besides mmseg's ``IoUMetric`` keys (``aAcc``, ``mIoU``, ...),
:class:`OpenVocabIoUMetric` reports ``mIoU_seen`` and ``mIoU_unseen`` (the mean IoU over each
group) and ``hIoU``, their harmonic mean, which is high only if both are::

    test_evaluator = dict(type='OpenVocabIoUMetric', unseen_classes=['sand'],
                          iou_metrics=['mIoU'])
"""
import warnings
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

import numpy as np
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation import IoUMetric

from ..registry import METRICS


@METRICS.register_module()
class OpenVocabIoUMetric(IoUMetric):
    """:class:`mmseg.evaluation.IoUMetric` plus the mean IoU of seen and unseen classes.

    The per-class IoU is IoUMetric's own (``total_area_to_metrics`` on the areas summed over
    the dataset, ``nan_to_num`` applied). ``mIoU_seen`` / ``mIoU_unseen`` are the nan-means of
    the IoU over the classes of each group, in percent and rounded to 2 decimals as IoUMetric
    rounds ``mIoU``; a class absent from both the labels and the predictions has a NaN IoU and
    is left out, as in ``mIoU``. ``hIoU = 2 * seen * unseen / (seen + unseen)`` (from the
    unrounded means), 0 if either is 0, NaN if either is NaN (no class of a group present).

    Args:
        unseen_classes: names of the unseen classes; every dataset class not named is seen.
            Checked against ``dataset_meta['classes']`` when the metrics are computed.
        **kwargs: IoUMetric's arguments (``ignore_index``, ``iou_metrics``, ``nan_to_num``,
            ``beta``, ``collect_device``, ``output_dir``, ``format_only``, ``prefix``).

    Raises:
        ValueError: ``unseen_classes`` is a single string or empty.
    """

    def __init__(self, unseen_classes: Sequence[str], **kwargs) -> None:
        if isinstance(unseen_classes, str):
            raise ValueError(f'OpenVocabIoUMetric: unseen_classes={unseen_classes!r} is a '
                             f'string; give a list of class names, e.g. [{unseen_classes!r}]')
        if len(unseen_classes) == 0:
            raise ValueError('OpenVocabIoUMetric: unseen_classes is empty; name at least one '
                             'unseen class, or use IoUMetric')
        super().__init__(**kwargs)
        self.unseen_classes: Tuple[str, ...] = tuple(unseen_classes)

    def split_indices(self) -> Tuple[List[int], List[int]]:
        """Indices into ``dataset_meta['classes']`` of the seen and of the unseen classes.

        Returns:
            ``(seen, unseen)``, each in dataset order.

        Raises:
            ValueError: an unseen name that is not a dataset class (the message names it and
                lists the dataset's classes), or every dataset class named unseen.
        """
        classes = list(self.dataset_meta['classes'])
        unknown = [c for c in self.unseen_classes if c not in classes]
        if unknown:
            raise ValueError(f'OpenVocabIoUMetric: unseen_classes {unknown} are not classes of '
                             f'the dataset; its classes: {classes}')
        unseen = [i for i, c in enumerate(classes) if c in self.unseen_classes]
        seen = [i for i, c in enumerate(classes) if c not in self.unseen_classes]
        if not seen:
            raise ValueError(f'OpenVocabIoUMetric: unseen_classes {list(self.unseen_classes)} '
                             f'name every dataset class; none is left seen: {classes}')
        return seen, unseen

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """IoUMetric's metrics (and its per-class table in the log) plus ``mIoU_seen``,
        ``mIoU_unseen`` and ``hIoU``.

        Args:
            results: per image, the ``(intersect, union, pred, label)`` areas of
                :meth:`IoUMetric.intersect_and_union`.

        Returns:
            IoUMetric's dict (``aAcc``, ``mIoU``, ``mAcc``, ...) with the three keys added;
            empty with ``format_only``.

        Raises:
            ValueError: as :meth:`split_indices`.
        """
        seen, unseen = self.split_indices()
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        areas = [sum(area) for area in zip(*results)]  # intersect, union, pred, label
        iou = self.total_area_to_metrics(*areas, ['mIoU'], self.nan_to_num, self.beta)['IoU']
        with warnings.catch_warnings():  # a group with no class present: NaN, not a warning
            warnings.simplefilter('ignore', RuntimeWarning)
            seen_iou, unseen_iou = np.nanmean(iou[seen]), np.nanmean(iou[unseen])
        if seen_iou == 0 or unseen_iou == 0:
            h_iou = 0.0
        else:  # NaN propagates
            h_iou = 2 * seen_iou * unseen_iou / (seen_iou + unseen_iou)
        split = OrderedDict(mIoU_seen=seen_iou, mIoU_unseen=unseen_iou, hIoU=h_iou)
        # Rounded as IoUMetric rounds mIoU: np.round(np.nanmean(iou) * 100, 2).
        split = OrderedDict((k, float(np.round(v * 100, 2))) for k, v in split.items())
        logger: MMLogger = MMLogger.get_current_instance()
        print_log(f'open-vocabulary split: {len(seen)} seen, {len(unseen)} unseen classes '
                  f'({list(self.unseen_classes)}): '
                  + ', '.join(f'{k} {v:.2f}' for k, v in split.items()), logger)
        metrics.update(split)
        return metrics
