"""Benchmarks with more than 255 classes, as CAT-Seg evaluates them (KU-CVLAB/CAT-Seg@6d3a188
``datasets/prepare_ade20k_full.py``, ``prepare_pascal_context_459.py``,
``cat_seg/data/datasets/register_ade20k_847.py``, ``register_pascal_context.py``):

- A-847: :class:`ADE20K847Dataset`, ADE20K-full (ADE20K_2021_17_01) validation, 847 classes,
  uint16 ``.tif`` labels, 65535 = ignored (pixels of no 847 class).
- PC-459: :class:`PascalContext459Dataset`, PASCAL-Context val (5,105 images), 459 classes,
  ``.tif`` labels = the 459-label map minus 1, every pixel labelled ('unknown' is a class).

mmseg's ``LoadAnnotations`` casts labels to uint8; :class:`LoadWideAnnotations` keeps them whole
(int64), so these datasets' test pipelines use it and their evaluators name the ignore value.
Class names are the released json lists (``vocabularies/catseg/cls_ade847.txt``,
``cls_pc459.txt``): the dataset's labels and the name file are one list.
"""
from __future__ import annotations

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


@DATASETS.register_module()
class ADE20K847Dataset(BaseSegDataset):
    """ADE20K-847 (ADE20K-full validation, 2,000 images), as CAT-Seg's prepare_ade20k_full.py
    writes it: ``images_detectron2/validation/*.jpg`` and ``annotations_detectron2/validation/
    *.tif`` (uint16; 65535 = ignored). ``tools/dataset_converters/ade20k_847.py`` writes the
    same files."""

    METAINFO = dict(classes=_classes('cls_ade847.txt'))
    IGNORE_INDEX = 65535

    def __init__(self, img_suffix: str = '.jpg', seg_map_suffix: str = '.tif',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         ignore_index=self.IGNORE_INDEX, **kwargs)


@DATASETS.register_module()
class PascalContext459Dataset(BaseSegDataset):
    """PASCAL-Context-459 val (5,105 images), as CAT-Seg's prepare_pascal_context_459.py writes
    it: ``JPEGImages/*.jpg`` and ``annotations_detectron2/pc459_val/*.tif`` (the 459-label map
    minus one; the released ignore label 459 never occurs).
    ``tools/dataset_converters/pascal_context_459.py`` writes the same files."""

    METAINFO = dict(classes=_classes('cls_pc459.txt'))
    IGNORE_INDEX = 459

    def __init__(self, img_suffix: str = '.jpg', seg_map_suffix: str = '.tif',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         ignore_index=self.IGNORE_INDEX, **kwargs)
