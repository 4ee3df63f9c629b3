"""COCO-format detection datasets for open-vocabulary detection, registered in mmdet.

mmdet's :class:`~mmdet.datasets.CocoDataset` keeps the annotations of the categories named by
``metainfo['classes']`` and silently drops names the annotation file does not have (its
``get_cat_ids(cat_names=...)`` ignores them), so a misspelt class would train or evaluate on
fewer classes without a word. :class:`OVDCocoDataset` is ``CocoDataset`` with that checked:
every class of the config must be a category of the file, else a ``ValueError`` names the
missing classes and the file. Training on the base classes is then ``metainfo=dict(classes=
BASE)`` (annotations of the other categories are left out, their objects unlabelled, as in the
OVR-CNN / RegionCLIP base training split), evaluation ``metainfo=dict(classes=ALL)``.
"""
from __future__ import annotations

import json
from pathlib import Path

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

# COCO OVD (OVR-CNN's split; RegionCLIP detectron2/data/datasets/coco_zeroshot_categories.py),
# in COCO category-id order. configs/_base_/datasets/coco_ovd.py writes them out literally.
COCO_OVD_NOVEL = (
    'airplane', 'bus', 'cat', 'dog', 'cow', 'elephant', 'umbrella', 'tie', 'snowboard',
    'skateboard', 'cup', 'knife', 'cake', 'couch', 'keyboard', 'sink', 'scissors')
COCO_OVD_BASE = (
    'person', 'bicycle', 'car', 'motorcycle', 'train', 'truck', 'boat', 'bench', 'bird',
    'horse', 'sheep', 'bear', 'zebra', 'giraffe', 'backpack', 'handbag', 'suitcase', 'frisbee',
    'skis', 'kite', 'surfboard', 'bottle', 'fork', 'spoon', 'bowl', 'banana', 'apple',
    'sandwich', 'orange', 'broccoli', 'carrot', 'pizza', 'donut', 'chair', 'bed', 'toilet', 'tv',
    'laptop', 'mouse', 'remote', 'microwave', 'oven', 'toaster', 'refrigerator', 'book', 'clock',
    'vase', 'toothbrush')


def check_classes(classes, categories, ann_file) -> None:
    """Raise a ``ValueError`` unless every name of ``classes`` is a category name of
    ``categories`` (the COCO ``categories`` list of ``ann_file``), once."""
    names = [c['name'] for c in categories]
    if not classes:
        raise ValueError(f'{ann_file}: the dataset was given an empty class list')
    missing = [c for c in classes if c not in names]
    if missing:
        raise ValueError(f'{ann_file}: classes {missing} of the config are not categories of '
                         f'the annotation file (it has {len(names)}: {names[:10]}'
                         f'{" ..." if len(names) > 10 else ""})')
    dup = sorted({c for c in classes if list(classes).count(c) > 1})
    if dup:
        raise ValueError(f'{ann_file}: classes {dup} appear more than once in the config')


@DATASETS.register_module()
class OVDCocoDataset(CocoDataset):
    """:class:`~mmdet.datasets.CocoDataset` whose ``metainfo['classes']`` must all be
    categories of ``ann_file`` (see the module docstring). The class order is the file's
    category order restricted to the config's classes, as in ``CocoDataset``; a config listing
    them in another order gets an error rather than labels that silently differ from the
    text classifier's order."""

    def load_data_list(self) -> list[dict]:
        path = Path(self.ann_file)
        if not path.is_file():
            raise FileNotFoundError(f'{type(self).__name__}: annotation file {path} not found')
        categories = json.loads(path.read_text())['categories']
        classes = list(self.metainfo['classes'])
        check_classes(classes, categories, path)
        in_file_order = [c['name'] for c in categories if c['name'] in classes]
        if in_file_order != classes:
            raise ValueError(f'{path}: classes must be listed in the file\'s category order '
                             f'({in_file_order}), got {classes}: labels follow the file\'s '
                             'order and would not match the text classifier\'s')
        return super().load_data_list()

    def load_proposals(self) -> None:
        """mmdet's ``proposal_file`` (``{'<dir>/<file name>': dict(bboxes=(N, 4) x1y1x2y2
        in original-image pixels, scores=(N,))}``, as mmdet's ``DumpProposals`` writes it),
        with clear errors where mmdet asserts: a missing file, a file for other images, boxes
        not (N, 4)."""
        import os.path as osp

        import numpy as np
        from mmengine.fileio import load

        path = self.proposal_file
        if not osp.isabs(path):
            path = osp.join(self.data_root or '', path)
        if not osp.isfile(path):
            raise FileNotFoundError(f'{type(self).__name__}: proposal_file {path} not found')
        proposals = load(path)
        if not isinstance(proposals, dict):
            raise ValueError(f'{path}: expected a dict of image name -> proposals, got '
                             f'{type(proposals).__name__}')
        missing = []
        for info in self.data_list:
            key = osp.join(osp.basename(osp.dirname(info['img_path'])),
                           osp.basename(info['img_path']))
            if key not in proposals:
                missing.append(key)
                continue
            boxes = np.asarray(proposals[key]['bboxes'])
            if boxes.ndim != 2 or boxes.shape[1] != 4:
                raise ValueError(f'{path}: proposals of {key} have shape {boxes.shape}, '
                                 'expected (N, 4)')
            info['proposals'] = proposals[key]
        if missing:
            raise ValueError(f'{path} does not match the dataset: no proposals for '
                             f'{len(missing)} of its {len(self.data_list)} images (e.g. '
                             f'{missing[:3]}); keys are "<image dir>/<file name>"')
