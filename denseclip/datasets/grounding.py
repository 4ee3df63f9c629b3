"""Phrase-localization datasets: one sample per (image, phrase, ground-truth box).

* :class:`ZSGNetDataset`: the ZSGNet csv splits (Sadhu et al., ICCV 2019,
  TheShadow29/zsgnet-pytorch ``DATA_README.md``) the Adapting-CLIP paper evaluates on:
  ``flickr30k_c0``/``flickr30k_c1`` (Flickr S0/S1) and VG ``test_balanced_c2``/``c3`` (VG
  S0/S1). Read as pals-ttic/adapting-CLIP@d2026f3 ``utils/zsg_data.py``: the image column
  ``img_id`` (Flickr, ``.jpg`` appended) or ``image_fpath`` (VG), the box column ``bbox``
  (``[x1, y1, x2, y2]``), the phrase column ``query`` (Flickr, a list: the first phrase is
  used, as ``eval.py``) or ``phrase`` (VG).
* :class:`Flickr30kEntitiesDataset`: Flickr30k Entities, from the csv that
  ``tools/dataset_converters/flickr30k_entities.py`` writes in the same layout.
* :class:`ToyPhraseDataset`: phrases of the shapes world (``denseclip/toy/world.py``
  :func:`scene_phrases`), generated next to the toy split on first use.

Every sample goes through :class:`PackPhraseInputs`: ``inputs`` is the (3, H, W) uint8 RGB
picture, ``data_samples`` a ``BaseDataElement`` with ``phrase``, ``gt_bbox``, ``img_path``,
``ori_shape``.
"""
from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import torch
from mmengine.dataset import BaseDataset
from mmengine.structures import BaseDataElement

from ..registry import DATASETS, TRANSFORMS
from ..toy.world import PHRASES_VERSION, WORLD_VERSION, write_phrases
from ..utils.image import load_image
from .toy import ensure_toy_split

__all__ = ['PackPhraseInputs', 'ZSGNetDataset', 'Flickr30kEntitiesDataset', 'ToyPhraseDataset']


@TRANSFORMS.register_module()
class PackPhraseInputs:
    """Load ``img_path`` as RGB (:func:`denseclip.utils.image.load_image`) and pack a sample
    for :class:`denseclip.models.grounding.PhraseGroundingModel`."""

    def __call__(self, results: dict) -> dict:
        rgb = load_image(results['img_path'])
        # A data element, not a dict: mmengine's pseudo_collate would merge dicts across the
        # batch; the evaluator turns elements back into dicts.
        sample = BaseDataElement(phrase=results['phrase'],
                                 gt_bbox=[float(c) for c in results['gt_bbox']],
                                 img_path=results['img_path'], ori_shape=rgb.shape[:2])
        return dict(inputs=torch.from_numpy(rgb.copy()).permute(2, 0, 1), data_samples=sample)


def _parse_box(text: str, where: str) -> list[float]:
    try:
        box = [float(c) for c in ast.literal_eval(text)]
    except (ValueError, SyntaxError, TypeError):
        box = []
    if len(box) != 4:
        raise ValueError(f'{where}: bbox {text!r} is not [x1, y1, x2, y2]')
    return box


@DATASETS.register_module()
class ZSGNetDataset(BaseDataset):
    """A ZSGNet csv split (``ds_csv_ann/<name>/csv_dir/<split>.csv`` or
    ``ds_csv_ann/vg_split/csv_dir/<split>.csv``).

    Args:
        ann_file: the csv, relative to ``data_root``.
        data_prefix: ``dict(img_path=...)``, the image folder under ``data_root``.
        **kwargs: :class:`mmengine.dataset.BaseDataset`'s (``pipeline``, ``indices``...).
    """

    METAINFO = dict(task='phrase_localization')

    def load_data_list(self) -> list[dict]:
        path = Path(self.ann_file)
        if not path.is_file():
            raise FileNotFoundError(f'{type(self).__name__}: annotation file {path} does not '
                                    'exist; see model_zoo.md, "Phrase localization data"')
        image_dir = Path(self.data_prefix.get('img_path', ''))
        data = []
        with open(path, newline='') as f:
            reader = csv.DictReader(f)
            columns = set(reader.fieldnames or ())
            image_key = 'img_id' if 'img_id' in columns else 'image_fpath'
            phrase_key = 'query' if 'query' in columns else 'phrase'
            missing = {image_key, phrase_key, 'bbox'} - columns
            if missing:
                raise ValueError(f'{path}: columns {sorted(missing)} missing; found '
                                 f'{sorted(columns)} (expected ZSGNet\'s img_id/image_fpath, '
                                 'bbox, query/phrase)')
            for i, row in enumerate(reader):
                image = row[image_key]
                if image_key == 'img_id' and not image.endswith('.jpg'):
                    image += '.jpg'
                query = row[phrase_key].strip()
                phrases = ast.literal_eval(query) if query.startswith('[') else [query]
                data.append(dict(img_path=str(image_dir / image), phrase=phrases[0],
                                 gt_bbox=_parse_box(row['bbox'], f'{path}:{i + 2}')))
        return data


@DATASETS.register_module()
class Flickr30kEntitiesDataset(ZSGNetDataset):
    """Flickr30k Entities phrases, one row per phrase with its boxes' union, as written by
    ``tools/dataset_converters/flickr30k_entities.py`` (ZSGNet's csv layout)."""


@DATASETS.register_module()
class ToyPhraseDataset(BaseDataset):
    """Phrases of the shapes-world scenes with the tight boxes of the things they name.

    Args:
        generate: ``dict(num_images=..., seed=0, size=224, split='val')``: the toy split
            (:func:`~denseclip.datasets.toy.ensure_toy_split`, shared with the segmentation
            configs) and its ``phrases_{split}.json`` are written under ``data_root`` if
            missing or stale.
        data_root: the toy split's directory.
        **kwargs: :class:`mmengine.dataset.BaseDataset`'s (``pipeline``, ``indices``...).
    """

    METAINFO = dict(task='phrase_localization')

    def __init__(self, generate: dict, data_root: str, **kwargs) -> None:
        self.generate = {**dict(seed=0, size=224, split='val'), **generate}
        ensure_toy_split(data_root, **self.generate)
        super().__init__(data_root=data_root, ann_file=f"phrases_{self.generate['split']}.json",
                         **kwargs)

    def load_data_list(self) -> list[dict]:
        path = Path(self.ann_file)
        params = {k: self.generate[k] for k in ('num_images', 'seed', 'size')}
        found = json.loads(path.read_text()) if path.is_file() else {}
        if (found.get('phrases_version'), found.get('world_version')) != (
                PHRASES_VERSION, WORLD_VERSION) or any(found.get(k) != v
                                                       for k, v in params.items()):
            write_phrases(self.data_root, split=self.generate['split'], **params)
            found = json.loads(path.read_text())
        image_dir = Path(self.data_root, 'img_dir', self.generate['split'])
        return [dict(img_path=str(image_dir / s['image']), phrase=s['phrase'], gt_bbox=s['bbox'])
                for s in found['samples']]
