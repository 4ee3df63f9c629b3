"""Build PASCAL-Context-459 val labels as CAT-Seg evaluates them.

The released ``datasets/prepare_pascal_context_459.py`` (KU-CVLAB/CAT-Seg@6d3a188), rewritten:
for each id of the released val list (``datasets/pascalcontext_val.txt``, 5,104 ids; copied
byte for byte as ``catseg_pascalcontext_val.txt`` next to this script) that has a
``trainval/<id>.mat`` (the 459-class release, ``trainval.tar.gz``), the label is ``LabelMap - 1``
(``LabelMap`` holds 1..459, so labels are 0..458: every pixel labelled, 'unknown' included),
saved as a 16-bit ``.tif``. Ids without a ``.mat`` are skipped, as released. The released
script's ``labels.txt`` dictionary is never used, so ``labels.txt`` is not needed here.

Input (PASCAL VOC 2010 with the 459-class annotations unpacked into it)::

    ROOT/JPEGImages/2008_000002.jpg
    ROOT/trainval/2008_000002.mat

Output (the ``PascalContext459Dataset`` layout, the released one)::

    ROOT/annotations_detectron2/pc459_val/2008_000002.tif

Usage::

    python tools/dataset_converters/pascal_context_459.py data/VOCdevkit/VOC2010 [--nproc 8]
"""
import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.io
from mmengine.utils import track_parallel_progress, track_progress
from PIL import Image

NUM_CLASSES = 459
RELEASED_VAL_LIST = Path(__file__).with_name('catseg_pascalcontext_val.txt')

logger = logging.getLogger('pascal_context_459')


def label_map(mat_path: Path) -> np.ndarray:
    """(H, W) uint16 train ids 0..458 of one ``.mat``; raises on values outside 1..459."""
    labels = scipy.io.loadmat(str(mat_path))['LabelMap'].astype(np.int64)
    if labels.min() < 1 or labels.max() > NUM_CLASSES:
        raise ValueError(f'{mat_path}: LabelMap values {labels.min()}..{labels.max()}; expected '
                         f'1..{NUM_CLASSES}')
    return (labels - 1).astype(np.uint16)


def convert(task: tuple[Path, Path]) -> None:
    mat_path, out = task
    tmp = out.with_name(out.name + '.tmp')
    Image.fromarray(label_map(mat_path)).save(tmp, format='TIFF')
    os.replace(tmp, out)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', type=Path, help='VOCdevkit/VOC2010 with trainval/*.mat')
    parser.add_argument('--split', type=Path, default=RELEASED_VAL_LIST,
                        help='val ids, one a line (default: the released pascalcontext_val.txt)')
    parser.add_argument('--nproc', type=int, default=1, help='worker processes (default: 1)')
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')
    if args.nproc < 1:
        logger.error('--nproc=%d; expected >= 1', args.nproc)
        return 2
    mats = args.root / 'trainval'
    for path, what in ((args.split, 'the val id list'),
                       (mats, 'the unpacked 459-class annotations, trainval.tar.gz')):
        if not path.exists():
            logger.error('error: %s (%s) does not exist', path, what)
            return 1
    out_dir = args.root / 'annotations_detectron2' / 'pc459_val'
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = [line.strip() for line in args.split.read_text().splitlines() if line.strip()]
    tasks = [(mats / f'{i}.mat', out_dir / f'{i}.tif') for i in ids if (mats / f'{i}.mat').exists()]
    if not tasks:
        logger.error('error: none of the %d ids of %s has a .mat in %s', len(ids), args.split, mats)
        return 1
    logger.info('%s: converting %d label maps (%d ids without a .mat)', out_dir, len(tasks),
                len(ids) - len(tasks))
    try:
        if args.nproc > 1:
            track_parallel_progress(convert, tasks, nproc=args.nproc)
        else:
            track_progress(convert, tasks)
    except ValueError as err:
        logger.error('error: %s', err)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
