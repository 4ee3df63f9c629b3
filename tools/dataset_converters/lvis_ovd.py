"""Write the LVIS v1 open-vocabulary detection files (frequency split: rare = novel).

LVIS OVD (ViLD, Gu et al. ICLR 2022; RegionCLIP's LVIS rows) trains on the 866 frequent and
common classes and reports AP on the 337 rare ones (APr, mmdet's ``LVISMetric``). This writes

* ``annotations/lvis_v1_train_norare.json``: ``lvis_v1_train.json`` without the annotations
  of rare categories (every category and image kept, so the label space stays the 1203
  classes and the rare ones are never positives; Detic's file of the same name);
* ``annotations/lvis_v1_ovd_names.txt``: the class-name file of the text side, one class a
  line in category-id order: the LVIS name then its synonyms, ``_`` as spaces, separated by
  ``', '`` (denseclip's vocabulary format; a class scores the max over its names).

Input, under ROOT: ``annotations/lvis_v1_{train,val}.json``; ROOT also holds (or links) the
COCO 2017 images as ``train2017/`` and ``val2017/`` (LVIS file names come from ``coco_url``).

Usage::

    python tools/dataset_converters/lvis_ovd.py data/lvis
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from denseclip.engine.checkpoint import atomic_write


def norare(lvis: dict) -> dict:
    """``lvis`` without the annotations of categories whose ``frequency`` is ``'r'``."""
    if any('frequency' not in c for c in lvis['categories']):
        raise ValueError('lvis_ovd: categories without a frequency field; is this LVIS v1?')
    rare = {c['id'] for c in lvis['categories'] if c['frequency'] == 'r'}
    return dict(lvis, annotations=[a for a in lvis['annotations']
                                   if a['category_id'] not in rare])


def class_names(categories: list[dict]) -> list[str]:
    """One vocabulary line per category (id order): name and synonyms, ``_`` -> space,
    duplicates dropped, a ``', '`` inside a name made a space."""
    lines = []
    for c in sorted(categories, key=lambda c: c['id']):
        names = []
        for n in [c['name'], *c.get('synonyms', [])]:
            n = n.replace('_', ' ').replace(', ', ' ').strip()
            if n and n not in names:
                names.append(n)
        lines.append(', '.join(names))
    return lines


def _write(text: str, path: Path) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def convert(root: str | os.PathLike) -> list[Path]:
    ann = Path(root, 'annotations')
    out = []
    train, val = ann / 'lvis_v1_train.json', ann / 'lvis_v1_val.json'
    for f in (train, val):
        if not f.is_file():
            raise FileNotFoundError(f'lvis_ovd: {f} not found (LVIS v1 annotations)')
    data = norare(json.loads(train.read_text()))
    _write(json.dumps(data), ann / 'lvis_v1_train_norare.json')
    out.append(ann / 'lvis_v1_train_norare.json')
    cats = json.loads(val.read_text())['categories']
    _write('\n'.join(class_names(cats)) + '\n', ann / 'lvis_v1_ovd_names.txt')
    out.append(ann / 'lvis_v1_ovd_names.txt')
    rare = sum(c['frequency'] == 'r' for c in cats)
    print(f'{out[0]}: {len(data["annotations"])} base boxes; {out[1]}: {len(cats)} classes, '
          f'{rare} rare (novel)')
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='LVIS root holding annotations/lvis_v1_{train,val}.json')
    args = parser.parse_args(argv)
    try:
        convert(args.root)
    except (FileNotFoundError, ValueError) as err:
        print(f'lvis_ovd.py: error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
