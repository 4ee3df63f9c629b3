"""Build PASCAL-Context-459 val labels as CAT-Seg evaluates them.

The released ``datasets/prepare_pascal_context_459.py`` (KU-CVLAB/CAT-Seg@6d3a188), rewritten:
each val image id's ``trainval/<id>.mat`` (the 459-class release, ``trainval.tar.gz``) holds
``LabelMap`` with values 1..459; the label is ``LabelMap - 1`` (0..458, every pixel labelled,
'unknown' included), saved as a 16-bit ``.tif``. Ids without a ``.mat`` are skipped, as released.

Input (PASCAL VOC 2010 with the 459-class annotations unpacked into it)::

    ROOT/JPEGImages/2008_000002.jpg
    ROOT/trainval/2008_000002.mat
    ROOT/ImageSets/SegmentationContext/val.txt   (mmseg's PC-59 split, 5,105 ids; or --split)

Output (the ``PascalContext459Dataset`` layout, the released one)::

    ROOT/annotations_detectron2/pc459_val/2008_000002.tif

Usage::

    python tools/dataset_converters/pascal_context_459.py data/VOCdevkit/VOC2010
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np
import scipy.io
from mmengine.utils import track_progress
from PIL import Image

NUM_CLASSES = 459


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', type=Path, help='VOCdevkit/VOC2010 with trainval/*.mat')
    parser.add_argument('--split', type=Path, default=None,
                        help='val ids, one a line (default ImageSets/SegmentationContext/val.txt)')
    args = parser.parse_args(argv)
    split = args.split or args.root / 'ImageSets' / 'SegmentationContext' / 'val.txt'
    for path, what in ((split, 'the val id list'), (args.root / 'trainval', 'the unpacked '
                       '459-class annotations (trainval.tar.gz)')):
        if not path.exists():
            print(f'error: {path} ({what}) does not exist', file=sys.stderr)
            return 1
    out_dir = args.root / 'annotations_detectron2' / 'pc459_val'
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = [line.strip() for line in split.read_text().splitlines() if line.strip()]
    tasks = [(args.root / 'trainval' / f'{i}.mat', out_dir / f'{i}.tif') for i in ids
             if (args.root / 'trainval' / f'{i}.mat').exists()]
    track_progress(convert, tasks)
    print(f'{out_dir}: {len(tasks)} label maps ({len(ids) - len(tasks)} ids without a .mat)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
