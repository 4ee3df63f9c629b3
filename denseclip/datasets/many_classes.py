"""Benchmarks with more than 255 classes, as CAT-Seg evaluates them (KU-CVLAB/CAT-Seg@6d3a188
``datasets/prepare_ade20k_full.py``, ``prepare_pascal_context_459.py``,
``cat_seg/data/datasets/register_ade20k_847.py``, ``register_pascal_context.py``):

- A-847: :class:`ADE20K847Dataset`, ADE20K-full (ADE20K_2021_17_01) validation, 847 classes,
  uint16 ``.tif`` labels, 65535 = ignored (pixels of no 847 class).
- PC-459: :class:`PascalContext459Dataset`, PASCAL-Context val (the released
  ``datasets/pascalcontext_val.txt``, 5,104 ids), 459 classes, ``.tif`` labels = the 459-label
  map minus 1, every pixel labelled ('unknown' is a class; the ignore label 459 never occurs).

mmseg's ``LoadAnnotations`` casts labels to uint8; :class:`LoadWideAnnotations` keeps them whole
(int64), so these datasets' test pipelines use it. The ignore values stay the released ones
(65535, 459), declared as the datasets' ``ignore_index`` and in their configs' ``IoUMetric``
(``ignore_index``): 255 is a class here, so it cannot be the ignore label.

Without an ``ann_file`` the samples are the label files with their images, as the release's
detectron2 ``load_sem_seg`` pairs them: ``JPEGImages`` holds all of VOC2010, PC-459 only val.

Class names are the released json lists (``vocabularies/catseg/cls_ade847.txt``,
``cls_pc459.txt``): the dataset's labels and the name file are one list.
"""
from __future__ import annotations

import os.path as osp
from pathlib import Path

import mmcv
import numpy as np
from mmengine import fileio
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.transforms import LoadAnnotations

from ..registry import DATASETS, TRANSFORMS

NAME_FILES = Path(__file__).parent / 'vocabularies' / 'catseg'


def _classes(name: str) -> tuple[str, ...]:
    lines = (NAME_FILES / name).read_text(encoding='utf-8').splitlines()
    return tuple(line.strip() for line in lines if line.strip())


@TRANSFORMS.register_module()
class LoadWideAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` for label maps with values above 255 (16-bit TIFF/PNG):
    the labels stay int64 instead of being cast to uint8. ``reduce_zero_label`` and label
    maps are not supported (none of these datasets uses them)."""

    def _load_seg_map(self, results: dict) -> None:
        if results.get('reduce_zero_label') or results.get('label_map'):
            raise ValueError('LoadWideAnnotations: reduce_zero_label and label_map are not '
                             f"supported ({results['seg_map_path']})")
        data = fileio.get(results['seg_map_path'], backend_args=self.backend_args)
        seg = mmcv.imfrombytes(data, flag='unchanged', backend=self.imdecode_backend)
        if seg is None or seg.ndim != 2:
            raise ValueError(f"{results['seg_map_path']}: expected a single-channel label map")
        results['gt_seg_map'] = seg.astype(np.int64)
        results['seg_fields'].append('gt_seg_map')


class _LabelListedDataset(BaseSegDataset):
    """A dataset whose samples are its label files (when no ``ann_file`` is given), each with the
    image of the same name; a label without its image is an error."""

    def load_data_list(self) -> list[dict]:
        if self.ann_file and not osp.isdir(self.ann_file):
            return super().load_data_list()
        img_dir = self.data_prefix['img_path']
        ann_dir = self.data_prefix['seg_map_path']
        data_list, missing = [], []
        for seg_map in fileio.list_dir_or_file(ann_dir, list_dir=False,
                                               suffix=self.seg_map_suffix, recursive=True,
                                               backend_args=self.backend_args):
            img_path = osp.join(img_dir, seg_map[:-len(self.seg_map_suffix)] + self.img_suffix)
            if not fileio.exists(img_path, backend_args=self.backend_args):
                missing.append(img_path)
            data_list.append(dict(img_path=img_path, seg_map_path=osp.join(ann_dir, seg_map),
                                  label_map=self.label_map,
                                  reduce_zero_label=self.reduce_zero_label, seg_fields=[]))
        if missing:
            raise FileNotFoundError(f'{type(self).__name__}: {len(missing)} label maps in '
                                    f'{ann_dir} have no image, e.g. {missing[0]}')
        return sorted(data_list, key=lambda info: info['img_path'])


@DATASETS.register_module()
class ADE20K847Dataset(_LabelListedDataset):
    """ADE20K-847 (ADE20K-full validation, 2,000 images), as CAT-Seg's prepare_ade20k_full.py
    writes it: ``images_detectron2/validation/*.jpg`` (short side at most 512) and
    ``annotations_detectron2/validation/*.tif`` (uint16; 65535 = ignored), read as
    register_ade20k_847.py does (``gt_ext='tif'``, ``ignore_label=65535``).
    ``tools/dataset_converters/ade20k_847.py`` writes the same files."""

    METAINFO = dict(classes=_classes('cls_ade847.txt'))
    IGNORE_INDEX = 65535

    def __init__(self, img_suffix: str = '.jpg', seg_map_suffix: str = '.tif',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         ignore_index=self.IGNORE_INDEX, **kwargs)


@DATASETS.register_module()
class PascalContext459Dataset(_LabelListedDataset):
    """PASCAL-Context-459 val, as CAT-Seg's prepare_pascal_context_459.py writes it:
    ``JPEGImages/*.jpg`` (all of VOC2010) and ``annotations_detectron2/pc459_val/*.tif`` (the
    459-label map minus one, for the ids of ``pascalcontext_val.txt`` that have a ``.mat``), read
    as register_pascal_context.py does (``gt_ext='tif'``, ``ignore_label=459``, which never
    occurs). ``tools/dataset_converters/pascal_context_459.py`` writes the same files."""

    METAINFO = dict(classes=_classes('cls_pc459.txt'))
    IGNORE_INDEX = 459

    def __init__(self, img_suffix: str = '.jpg', seg_map_suffix: str = '.tif',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         ignore_index=self.IGNORE_INDEX, **kwargs)
