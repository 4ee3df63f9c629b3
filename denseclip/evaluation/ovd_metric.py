"""COCO open-vocabulary detection metric: AP50 on the novel and the base classes.

The COCO OVD benchmark (Zareian et al., OVR-CNN, CVPR 2021; RegionCLIP Tab. 1) reports box
AP50 over the 17 novel classes, the 48 base classes and all 65, in the *generalized* setting:
the detector scores every box against all 65 classes and the novel (base) AP50 is COCO's AP at
IoU 0.5 averaged over the novel (base) categories only. mmdet's :class:`CocoMetric` gives the
overall numbers; :class:`OVDCocoMetric` adds ``{metric}_novel_AP50`` and ``{metric}_base_AP50``
by re-running pycocotools' ``COCOeval`` on the same detections with ``params.catIds`` set to
each subset (the average of ``precision[iou=0.5, :, k, area=all, maxDets=100]`` over the
subset's categories ``k`` with ground truth, exactly what ``summarize`` prints as AP50).

LVIS needs no subclass: mmdet's ``LVISMetric`` reports ``bbox_APr`` / ``APc`` / ``APf`` from
the annotation file's ``frequency`` field (the OVD "rare = novel" split).
"""
from __future__ import annotations

import contextlib
import io
import os.path as osp
import tempfile
from typing import Dict, Optional, Sequence

import numpy as np
from mmdet.datasets.api_wrappers import COCOeval
from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS
from mmengine.fileio import load
from mmengine.logging import MMLogger


@METRICS.register_module()
class OVDCocoMetric(CocoMetric):
    """:class:`~mmdet.evaluation.CocoMetric` that also reports AP50 on the novel and the base
    classes (see the module docstring).

    Args:
        novel_classes: names of the novel categories (COCO OVD: the 17 of
            ``configs/_base_/datasets/coco_ovd.py``); each must be a category of the ground
            truth, else ``ValueError``.
        base_classes: names of the base categories; ``None``: every other evaluated category.
        **kwargs: :class:`CocoMetric`'s (``ann_file``, ``metric``, ...).
    """

    def __init__(self, novel_classes: Sequence[str], base_classes: Optional[Sequence[str]] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not novel_classes:
            raise ValueError('OVDCocoMetric: novel_classes is empty')
        self.novel_classes = list(novel_classes)
        self.base_classes = None if base_classes is None else list(base_classes)

    def _split_cat_ids(self) -> Dict[str, list]:
        name_to_id = {self._coco_api.cats[i]['name']: i for i in self.cat_ids}
        wanted = dict(novel=self.novel_classes)
        if self.base_classes is not None:
            wanted['base'] = self.base_classes
        out = {}
        for split, names in wanted.items():
            missing = [n for n in names if n not in name_to_id]
            if missing:
                raise ValueError(f'OVDCocoMetric: {split} classes {missing} are not among the '
                                 f'evaluated categories {sorted(name_to_id)}')
            out[split] = [name_to_id[n] for n in names]
        if self.base_classes is None:
            out['base'] = [i for i in self.cat_ids if i not in set(out['novel'])]
        return out

    def compute_metrics(self, results: list) -> Dict[str, float]:
        eval_results = super().compute_metrics(results)  # sets _coco_api, cat_ids, img_ids
        if self.format_only:
            return eval_results
        logger = MMLogger.get_current_instance()
        _, preds = zip(*results)
        splits = self._split_cat_ids()
        with tempfile.TemporaryDirectory() as tmp:
            files = self.results2json(preds, osp.join(tmp, 'results'))
            for metric in self.metrics:
                if metric not in ('bbox', 'segm'):
                    continue
                predictions = load(files[metric])
                if metric == 'segm':
                    for x in predictions:
                        x.pop('bbox')  # mask areas, as CocoMetric does
                for split, cat_ids in splits.items():
                    ap50 = self._ap50(predictions, metric, cat_ids)
                    eval_results[f'{metric}_{split}_AP50'] = ap50
                    logger.info(f'{metric} AP50 on the {len(cat_ids)} {split} classes: '
                                f'{ap50:.3f}')
        return eval_results

    def _ap50(self, predictions: list, iou_type: str, cat_ids: list) -> float:
        """COCO AP at IoU 0.5 over ``cat_ids`` (-1 when none of them has ground truth)."""
        if not predictions:
            return 0.0
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = self._coco_api.loadRes(predictions)
            coco_eval = COCOeval(self._coco_api, coco_dt, iou_type)
            coco_eval.params.catIds = cat_ids
            coco_eval.params.imgIds = self.img_ids
            coco_eval.params.maxDets = list(self.proposal_nums)
            coco_eval.params.iouThrs = self.iou_thrs
            coco_eval.evaluate()
            coco_eval.accumulate()
        t = int(np.argmin(np.abs(np.asarray(coco_eval.params.iouThrs) - 0.5)))
        if abs(coco_eval.params.iouThrs[t] - 0.5) > 1e-6:
            raise ValueError(f'OVDCocoMetric: iou_thrs {list(self.iou_thrs)} has no 0.5')
        precision = coco_eval.eval['precision'][t, :, :, 0, -1]  # (recall, class)
        precision = precision[precision > -1]
        return float(np.mean(precision)) if precision.size else -1.0
