"""Instances of the shapes world as an mmdet dataset, generated on demand.

``dict(type='ToyDetDataset', data_root='data/toy_world', generate=dict(num_images=100, seed=0),
...)`` writes the toy split and its ``annotations/instances_{split}.json`` once
(:func:`denseclip.toy.instances.ensure_toy_instances`, atomically) and reads them as a COCO
dataset (:class:`~denseclip.datasets.ovd.OVDCocoDataset`). The split is the segmentation
configs' one when the ``data_root`` and generation settings agree.
"""
from __future__ import annotations

import json
from typing import Optional, Sequence

from mmdet.registry import DATASETS

from ..toy.instances import TOY_DET_CLASSES, ensure_toy_instances
from .ovd import OVDCocoDataset


@DATASETS.register_module()
class ToyDetDataset(OVDCocoDataset):
    """The six things of the shapes world with boxes and masks (COCO format).

    Args:
        generate: ``dict(num_images=..., seed=0, size=224, split='val')``, passed to
            :func:`~denseclip.toy.instances.ensure_toy_instances` with ``data_root``.
        data_root: the split's directory.
        ann_file, data_prefix: default ``annotations/instances_{split}.json`` and
            ``dict(img='img_dir/{split}/')``.
        exclude_scenes_with: class names; scenes holding a thing of one of them are left out.
            The toy stand-in for a training world in which the novel classes never occur
            (the toy RPN's second setting, configs/ovd/rpn_toy-vit-p16_toy-det-base-only.py);
            COCO OVD has no such split: there novel objects appear unlabelled in base images.
        **kwargs: :class:`mmdet.datasets.CocoDataset`'s (``metainfo=dict(classes=...)`` picks
            the base classes for training, ``pipeline``, ``filter_cfg``, ...).
    """
    METAINFO = dict(classes=TOY_DET_CLASSES,
                    palette=[(220, 30, 40), (250, 215, 30), (135, 50, 195), (250, 125, 15),
                             (245, 115, 195), (25, 25, 30)])

    def __init__(self, generate: dict, data_root: str, ann_file: Optional[str] = None,
                 data_prefix: Optional[dict] = None, exclude_scenes_with: Sequence[str] = (),
                 **kwargs) -> None:
        unknown = [c for c in exclude_scenes_with if c not in TOY_DET_CLASSES]
        if unknown:
            raise ValueError(f'ToyDetDataset: exclude_scenes_with {unknown} are not toy things '
                             f'{list(TOY_DET_CLASSES)}')
        self.exclude_scenes_with = tuple(exclude_scenes_with)
        generate = {**dict(seed=0, size=224, split='val'), **generate}
        ensure_toy_instances(data_root, **generate)
        split = generate['split']
        super().__init__(data_root=data_root,
                         ann_file=ann_file or f'annotations/instances_{split}.json',
                         data_prefix=data_prefix or dict(img=f'img_dir/{split}/'), **kwargs)

    def load_data_list(self) -> list[dict]:
        data_list = super().load_data_list()
        if not self.exclude_scenes_with:
            return data_list
        coco = json.loads(open(self.ann_file).read())
        ids = {c['id'] for c in coco['categories'] if c['name'] in self.exclude_scenes_with}
        drop = {a['image_id'] for a in coco['annotations'] if a['category_id'] in ids}
        return [d for d in data_list if d['img_id'] not in drop]
