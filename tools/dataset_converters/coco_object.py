"""Build COCO-Object labels (81 classes) from the COCO-Stuff-164k semantic maps.

COCO-Object is COCO 2017 with its 80 thing classes and one background class, as GroupViT,
TCL, SCLIP, NACLIP, ClearCLIP and ProxyCLIP evaluate it. Their converter (GroupViT
``convert_dataset/convert_coco_object.py@1757819``, copied as ``datasets/cvt_coco_object.py``
into the others) maps each raw COCO-Stuff id:

- a thing (raw id = COCO category id - 1, 0..89 with gaps) -> its index among the 80 things + 1;
- a stuff class (raw 91..181) -> 0, background;
- 255 (unlabelled) -> 0 as well: the reference sets every raw id above 90 to 0, 255 included,
  so unlabelled pixels are evaluated as background. We keep that, since it is what the
  published numbers were computed on.

Input layout (``stuffthingmaps_trainval2017.zip`` and the COCO 2017 images unpacked)::

    ROOT/images/val2017/000000000139.jpg
    ROOT/annotations/val2017/000000000139.png     raw COCO-Stuff ids, one channel

Output, next to the input (the ``COCOObjectDataset`` layout)::

    ROOT/annotations/val2017/000000000139_instanceTrainIds.png

Usage::

    python tools/dataset_converters/coco_object.py data/coco_stuff164k
    python tools/dataset_converters/coco_object.py data/coco_stuff164k --splits train2017 val2017
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
from mmengine.utils import track_parallel_progress, track_progress
from PIL import Image

# COCO category ids of the 80 things, in COCO order (ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83
# and 91 were defined for COCO 2014 but never annotated; COCO-Stuff keeps their raw slots).
THING_CATEGORY_IDS = (*range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67,
                      70, *range(72, 83), *range(84, 91))
STUFF_RAW_IDS = range(91, 182)  # COCO-Stuff's 91 stuff classes (category ids 92..182)
UNLABELLED = 255
INVALID = -1  # a raw value COCO-Stuff-164k never contains
SUFFIX = '_instanceTrainIds.png'

logger = logging.getLogger('coco_object')


def coco_object_lut() -> np.ndarray:
    """(256,) int16 lookup table: raw COCO-Stuff id -> COCO-Object train id, or ``INVALID``."""
    lut = np.full(256, INVALID, dtype=np.int16)
    lut[np.asarray(THING_CATEGORY_IDS) - 1] = np.arange(1, len(THING_CATEGORY_IDS) + 1)
    lut[STUFF_RAW_IDS] = 0
    lut[UNLABELLED] = 0  # as the reference: every raw id > 90 becomes background
    return lut


LUT = coco_object_lut()


def convert_label(label: np.ndarray, where: str = 'label') -> np.ndarray:
    """Map a raw COCO-Stuff-164k label map to COCO-Object train ids.

    Args:
        label: (H, W) uint8 raw ids.
        where: the file name, for error messages.

    Returns:
        (H, W) uint8 train ids in 0..80.

    Raises:
        ValueError: ``label`` is not a (H, W) uint8 map, or holds ids COCO-Stuff never uses
            (the unused thing slots 11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90, or 182-254),
            e.g. because it is an mmseg ``*_labelTrainIds.png`` rather than a raw map.
    """
    if label.ndim != 2 or label.dtype != np.uint8:
        raise ValueError(f'{where}: expected a one-channel uint8 label map, got shape '
                         f'{label.shape} dtype {label.dtype}')
    out = np.take(LUT, label)  # (H, W) int16
    if (out == INVALID).any():
        bad = np.unique(label[out == INVALID]).tolist()
        raise ValueError(f'{where}: raw ids {bad} do not occur in COCO-Stuff-164k label maps '
                         '(unused thing slots or > 181); is this a raw stuffthingmaps PNG?')
    return out.astype(np.uint8)


def convert_file(path: Path) -> None:
    """Write ``<stem>_instanceTrainIds.png`` next to the raw map ``path``."""
    label = convert_label(np.asarray(Image.open(path)), where=str(path))
    Image.fromarray(label).save(path.with_name(path.stem + SUFFIX))


def find_label_maps(root: Path, split: str) -> list[Path]:
    """The raw label maps of ``split``: ``root/annotations/<split>/*.png`` without
    ``TrainIds`` in the name (mmseg's ``_labelTrainIds`` and our outputs).

    Raises:
        FileNotFoundError: the folder is missing or holds no raw map.
    """
    folder = root / 'annotations' / split
    expected = (f'expected the COCO-Stuff-164k layout {root}/annotations/{split}/<image id>.png '
                '(raw stuffthingmaps_trainval2017 PNGs; see model_zoo.md, "Preparing the data")')
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder} is not a directory; {expected}')
    maps = sorted(p for p in folder.glob('*.png') if 'TrainIds' not in p.name)
    if not maps:
        raise FileNotFoundError(f'{folder} holds no raw label map (*.png without "TrainIds" in '
                                f'the name); {expected}')
    return maps


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert COCO-Stuff-164k label maps to COCO-Object (81 classes: '
        'background + 80 things), writing <id>_instanceTrainIds.png next to each raw map.')
    parser.add_argument('root', type=Path,
                        help='COCO-Stuff-164k root holding annotations/<split>/*.png, e.g. '
                        'data/coco_stuff164k')
    parser.add_argument('--splits', nargs='+', default=['val2017'],
                        help='sub-folders of annotations/ to convert (default: val2017, the '
                        'benchmark split)')
    parser.add_argument('--nproc', type=int, default=1, help='worker processes (default: 1)')
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')
    if args.nproc < 1:
        logger.error('--nproc=%d; expected >= 1', args.nproc)
        return 2
    try:
        jobs = {split: find_label_maps(args.root, split) for split in args.splits}
        for split, maps in jobs.items():
            logger.info('%s: converting %d label maps', split, len(maps))
            if args.nproc > 1:
                track_parallel_progress(convert_file, maps, nproc=args.nproc)
            else:
                track_progress(convert_file, maps)
    except (FileNotFoundError, ValueError) as err:
        logger.error('error: %s', err)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
