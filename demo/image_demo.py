"""Segment one picture with any vocabulary and write the overlay.

    python demo/image_demo.py                      # bundled toy picture, toy CLIP, offline
    python demo/image_demo.py street.jpg --classes "road,car,person;pedestrian,sky" \\
        --model ViT-B-16 --pretrained openai --method sclip --heatmaps

Phrase mode (Adapting CLIP for phrase localization): ``--phrase "the red circle"`` writes the
phrase's heat map with its box instead (default ``<image stem>_phrase.png``) and prints the box.

    python demo/image_demo.py --phrase "the red circle on the grass"

Classes are split by ``,`` and a class's synonyms by ``;``. The picture written (default
``<image stem>_seg.png`` in the current directory) has the input's size: label colours blended
on the image with a legend of the predicted classes; ``--heatmaps`` adds below it one
probability map per class. The class areas go to stdout, largest first. On any error nothing
is written: the picture goes to a temporary file in the output directory, then is renamed.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # demo_utils, when run as a script

import denseclip  # noqa: E402,F401  (installs the mmcv shim, registers modules)
from demo_utils import (TOY_EXAMPLE, TOY_NOTE, TOY_VOCABULARY, add_model_arguments,  # noqa: E402
                        build_localizer, build_segmenter, check_model_arguments, is_toy,
                        parse_vocabulary)
from denseclip.apis import SegmentationResult, load_image  # noqa: E402
from denseclip.engine.checkpoint import atomic_replace  # noqa: E402

logger = logging.getLogger('image_demo')

TILE = 160  # heat-map tile side in pixels (the longer side of the image is scaled to it)
TITLE = 18  # height of the name bar above each tile


def heatmap_grid(result: SegmentationResult, width: int) -> np.ndarray:
    """(rows*(TILE+TITLE), width', 3) uint8: one viridis map of each class's probability over
    the dimmed grey image, named with the class and its peak probability."""
    H, W = result.labels.shape
    scale = TILE / max(H, W)
    th, tw = max(1, round(H * scale)), max(1, round(W * scale))
    K = len(result.classes)
    cols = max(1, min(K, width // tw))
    rows = math.ceil(K / cols)
    grid = np.full((rows * (th + TITLE), cols * tw, 3), 255, np.uint8)
    grey = cv2.cvtColor(cv2.resize(result.image, (tw, th), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_RGB2GRAY)
    for k, name in enumerate(result.classes):
        prob = cv2.resize(result.probs[k], (tw, th), interpolation=cv2.INTER_LINEAR)
        heat = cv2.applyColorMap((prob.clip(0, 1) * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
        heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
        tile = (0.7 * heat + 0.3 * grey[..., None]).astype(np.uint8)
        y, x = (k // cols) * (th + TITLE), (k % cols) * tw
        grid[y + TITLE:y + TITLE + th, x:x + tw] = tile
        text = f'{name} {result.probs[k].max():.2f}'
        cv2.putText(grid, text, (x + 2, y + TITLE - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                    (0, 0, 0), 1, cv2.LINE_AA)
    return grid


def render(result: SegmentationResult, heatmaps: bool) -> np.ndarray:
    """The overlay (H, W, 3), with the heat-map grid stacked below it if asked."""
    overlay = result.overlay()
    if not heatmaps:
        return overlay
    grid = heatmap_grid(result, max(overlay.shape[1], 4 * TILE))
    width = max(overlay.shape[1], grid.shape[1])
    canvas = np.full((overlay.shape[0] + grid.shape[0], width, 3), 255, np.uint8)
    canvas[:overlay.shape[0], :overlay.shape[1]] = overlay
    canvas[overlay.shape[0]:, :grid.shape[1]] = grid
    return canvas


def output_format(out: Path) -> str:
    """PIL format name for the output's extension; ``ValueError`` names the valid ones."""
    formats = {'.png': 'PNG', '.jpg': 'JPEG', '.jpeg': 'JPEG', '.bmp': 'BMP', '.webp': 'WEBP',
               '.tif': 'TIFF', '.tiff': 'TIFF'}
    if out.suffix.lower() not in formats:
        raise ValueError(f'--out {out}: unknown picture extension {out.suffix!r}; use one of '
                         f'{sorted(formats)}')
    if not out.parent.is_dir():
        raise FileNotFoundError(f'--out {out}: directory {out.parent} does not exist')
    return formats[out.suffix.lower()]


def write_atomic(picture: np.ndarray, out: Path, fmt: str) -> None:
    """Write to a temporary file next to ``out``, then rename: never a partial ``out``."""
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f'.{out.stem}-', suffix=out.suffix)
    os.close(fd)
    try:
        Image.fromarray(picture).save(tmp, format=fmt)
        atomic_replace(tmp, out)  # keeps an existing file's mode, else the umask's
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image', nargs='?', default=None,
                        help=f'picture to segment (default: {TOY_EXAMPLE.name}, with the toy '
                        'model)')
    parser.add_argument('--classes', default=None,
                        help='"cat,dog,grass", synonyms with ";" ("person;pedestrian,car"); '
                        'default with the toy model: the 13 toy-world classes')
    parser.add_argument('--out', type=Path, default=None,
                        help='output picture (default: <image stem>_seg.png here)')
    parser.add_argument('--phrase', default=None,
                        help='phrase mode: localise this phrase (heat map and box) instead of '
                        'segmenting')
    parser.add_argument('--heatmaps', action='store_true',
                        help='add a grid of per-class probability maps below the overlay')
    add_model_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='%(name)s: %(message)s')
    toy = is_toy(args)
    image_path = Path(args.image) if args.image is not None else TOY_EXAMPLE
    if args.phrase is not None:
        return phrase_main(args, toy, image_path)
    out = args.out if args.out is not None else Path(f'{image_path.stem}_seg.png')
    try:
        check_model_arguments(args)
        if args.image is None and not toy:
            raise ValueError('give an IMAGE to segment (only the toy model has a bundled one)')
        fmt = output_format(out)
        image = load_image(image_path)
        if args.classes is not None:
            vocabulary = parse_vocabulary(args.classes)
        elif toy:
            vocabulary = parse_vocabulary(TOY_VOCABULARY)
        elif args.config is None:
            raise ValueError('--classes is required with --model/--pretrained, e.g. '
                             '--classes "cat,dog,grass"')
        else:
            vocabulary = None  # the config's own vocabulary
        if toy:
            print(TOY_NOTE)
        segmenter = build_segmenter(args)
        result = segmenter(image, vocabulary)
        picture = render(result, args.heatmaps)
        write_atomic(picture, out, fmt)
    except (OSError, ValueError, TypeError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'image_demo.py: error: {message}', file=sys.stderr)
        return 1
    print(f'wrote {out} ({picture.shape[1]}x{picture.shape[0]}); class areas:')
    for name, area in result.areas().items():
        print(f'{100 * area:6.2f}%  {name}')
    return 0


def phrase_main(args: argparse.Namespace, toy: bool, image_path: Path) -> int:
    """Phrase mode: write the heat map with the box, print the box and the score."""
    out = args.out if args.out is not None else Path(f'{image_path.stem}_phrase.png')
    try:
        check_model_arguments(args)
        if args.classes is not None or args.heatmaps:
            raise ValueError('--phrase localises one phrase; drop --classes/--heatmaps')
        if args.image is None and not toy:
            raise ValueError('give an IMAGE (only the toy model has a bundled one)')
        fmt = output_format(out)
        image = load_image(image_path)
        if toy:
            print(TOY_NOTE)
        result = build_localizer(args)(image, args.phrase)
        picture = result.overlay()
        write_atomic(picture, out, fmt)
    except (OSError, ValueError, TypeError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'image_demo.py: error: {message}', file=sys.stderr)
        return 1
    x1, y1, x2, y2 = (float(c) for c in result.box)
    print(f'wrote {out} ({picture.shape[1]}x{picture.shape[0]}); {args.phrase!r}: box '
          f'({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}), score {result.score:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
