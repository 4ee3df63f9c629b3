"""Which dense method runs on which CLIP backbone family, read from the registry.

Usage::

    python tools/backbone_support.py            # print the table
    python tools/backbone_support.py --write    # and replace it in model_zoo.md

Rows are the ``method=`` names (their harness configs, :func:`denseclip.apis.known_methods`);
a ViT family is supported when the method's registered attention lists it in
``supported_families`` (the backbone refuses the others when it is built); ResNet and ConvNeXt
towers have one dense path each (``RESNET_METHODS``, ``CONVNEXT_METHODS``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toy_table import replace_between

from denseclip.apis.dense_clip import (CONVNEXT_METHODS, RESNET_METHODS, dense_method_kwargs,
                                       known_methods)
from denseclip.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]
# column: (heading, the families' examples)
COLUMNS = (
    ('openclip', 'open_clip ViT (OpenAI, LAION, DFN, MetaCLIP, CLIPA; B/32 ... bigG/14)'),
    ('eva', 'EVA02-CLIP (timm, RoPE)'),
    ('siglip', 'SigLIP / SigLIP 2 (timm, no [CLS], MAP head)'),
    ('resnet', 'ResNet (RN50 ... RN50x64)'),
    ('convnext', 'ConvNeXt (timm)'),
)


def support() -> dict[str, dict[str, bool]]:
    """``{method: {family: supported}}`` for every ``method=`` name."""
    rows = {}
    for method in known_methods():
        attention = MODELS.get(dense_method_kwargs(method)['dense']['type'])
        families = set(attention.supported_families)
        rows[method] = {family: family in families for family, _ in COLUMNS[:3]}
        rows[method]['resnet'] = method in RESNET_METHODS
        rows[method]['convnext'] = method in CONVNEXT_METHODS
    return rows


def table(rows: dict[str, dict[str, bool]]) -> str:
    lines = ['| method | ' + ' | '.join(text for _, text in COLUMNS) + ' |',
             '|---|' + '---|' * len(COLUMNS)]
    for method, cells in rows.items():
        lines.append(f'| {method} | ' + ' | '.join('✓' if cells[f] else '—'
                                                   for f, _ in COLUMNS) + ' |')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--write', action='store_true', help='replace the table in model_zoo.md')
    args = parser.parse_args(argv)
    text = table(support())
    print(text)
    if args.write:
        replace_between(ROOT / 'model_zoo.md', 'backbone-support', text)
        print('wrote model_zoo.md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
