"""Write the COCO open-vocabulary detection split files (48 base / 17 novel classes).

The split is OVR-CNN's (Zareian et al., CVPR 2021, ``ipynb/003.ipynb``), used by RegionCLIP
(``datasets/README.md``: ``ovd_ins_{train,val}2017_{all,b,t}.json``; b = base, t = novel,
all = both) and every COCO OVD paper since. Each file keeps the split's categories (in COCO
id order), their annotations, and the images with at least one of them (OVR-CNN's files
drop the other images; a choice stated here, as their notebook was not re-run).

Input and output, under ROOT::

    ROOT/annotations/instances_{train,val}2017.json         (COCO 2017)
    ROOT/annotations/ovd_ins_{train,val}2017_{all,b,t}.json (written, each atomically)

Usage::

    python tools/dataset_converters/coco_ovd.py data/coco
    python tools/dataset_converters/coco_ovd.py data/coco --splits val2017 --subsets all
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from denseclip.datasets.ovd import COCO_OVD_BASE, COCO_OVD_NOVEL
from denseclip.engine.checkpoint import atomic_write

SUBSETS = {'b': COCO_OVD_BASE, 't': COCO_OVD_NOVEL}


def subset_names(subset: str) -> tuple[str, ...]:
    """The class names of ``'b'``, ``'t'`` or ``'all'`` (base + novel)."""
    if subset == 'all':
        return COCO_OVD_BASE + COCO_OVD_NOVEL
    if subset not in SUBSETS:
        raise ValueError(f"coco_ovd: subset {subset!r}; expected 'all', 'b' or 't'")
    return SUBSETS[subset]


def ovd_split(coco: dict, names: Sequence[str], source: str = 'the annotation file') -> dict:
    """The part of a COCO annotation dict with the categories ``names``: those categories in
    the file's order, their annotations, and the images that have one (``info``/``licenses``
    kept). Raises ``ValueError`` naming the classes ``source`` lacks."""
    by_name = {c['name']: c for c in coco['categories']}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f'coco_ovd: {source} has no categories {missing}')
    wanted = set(names)
    cats = [c for c in coco['categories'] if c['name'] in wanted]
    cat_ids = {c['id'] for c in cats}
    anns = [a for a in coco['annotations'] if a['category_id'] in cat_ids]
    img_ids = {a['image_id'] for a in anns}
    images = [im for im in coco['images'] if im['id'] in img_ids]
    out = {k: v for k, v in coco.items() if k not in ('categories', 'annotations', 'images')}
    return dict(out, categories=cats, annotations=anns, images=images)


def write_json(data: dict, path: Path) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data)))


def convert(root: str | os.PathLike, splits: Sequence[str] = ('train2017', 'val2017'),
            subsets: Sequence[str] = ('all', 'b', 't')) -> list[Path]:
    """Write ``ovd_ins_{split}_{subset}.json`` for each split and subset; returns the paths."""
    ann_dir = Path(root, 'annotations')
    written = []
    for split in splits:
        src = ann_dir / f'instances_{split}.json'
        if not src.is_file():
            raise FileNotFoundError(f'coco_ovd: {src} not found (COCO 2017 annotations)')
        coco = json.loads(src.read_text())
        for subset in subsets:
            out = ann_dir / f'ovd_ins_{split}_{subset}.json'
            data = ovd_split(coco, subset_names(subset), str(src))
            write_json(data, out)
            print(f'{out}: {len(data["categories"])} classes, {len(data["images"])} images, '
                  f'{len(data["annotations"])} boxes')
            written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='COCO root holding annotations/instances_*2017.json')
    parser.add_argument('--splits', nargs='+', default=['train2017', 'val2017'])
    parser.add_argument('--subsets', nargs='+', default=['all', 'b', 't'],
                        choices=['all', 'b', 't'])
    args = parser.parse_args(argv)
    try:
        convert(args.root, args.splits, args.subsets)
    except (FileNotFoundError, ValueError) as err:
        print(f'coco_ovd.py: error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
