"""Regenerate the toy world's table of training-free methods (model_zoo.md, README.md).

    python tools/toy_table.py                 # print the table (under a minute on 2 cores)
    python tools/toy_table.py --write         # and replace it in model_zoo.md and README.md

Runs ``tools/test.py`` on every ``configs/<method>/<method>_toy-vit-p16_toy.py`` (the toy CLIP,
100 evaluation scenes of ``data/toy_world``, generated, or regenerated when stale, on first
use) and writes the rows between the ``<!-- toy-table:... -->`` markers, so the documented
numbers are this code's.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ('vanilla', 'maskclip', 'sclip', 'clearclip', 'naclip', 'cliptrase', 'proxyclip',
           'clip_dinoiser', 'scclip', 'resclip', 'corrclip', 'trident')
NAMES = dict(vanilla='vanilla', maskclip='MaskCLIP', sclip='SCLIP', clearclip='ClearCLIP',
             naclip='NACLIP', cliptrase='CLIPtrase', proxyclip='ProxyCLIP',
             clip_dinoiser='CLIP-DINOiser', scclip='SC-CLIP', resclip='ResCLIP',
             corrclip='CorrCLIP', trident='Trident')
COLUMNS = ('mIoU', 'mIoU_seen', 'mIoU_unseen', 'hIoU', 'aAcc')


def config(method: str) -> str:
    return f'configs/{method}/{method}_toy-vit-p16_toy.py'


def measure(methods=METHODS) -> dict[str, dict[str, float]]:
    """tools/test.py's metrics of each method's toy config."""
    spec = importlib.util.spec_from_file_location('test_tool', ROOT / 'tools' / 'test.py')
    test_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_tool)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in methods:
            out = Path(tmp) / f'{method}.json'
            if test_tool.main([str(ROOT / config(method)), '--work-dir', f'{tmp}/{method}',
                               '--out', str(out)]) != 0:
                raise RuntimeError(f'tools/test.py {config(method)} failed')
            results[method] = json.loads(out.read_text())
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    """model_zoo.md's markdown table."""
    lines = ['| method | config and command | mIoU | seen | unseen | hIoU | aAcc |',
             '| --- | --- | --- | --- | --- | --- | --- |']
    for method, metrics in results.items():
        values = ' | '.join(f'{metrics[c]:.2f}' for c in COLUMNS)
        lines.append(f'| {method} | `python tools/test.py {config(method)}` | {values} |')
    return '\n'.join(lines)


def summary(results: dict[str, dict[str, float]]) -> str:
    """README.md's one-line summary, by increasing mIoU."""
    ranked = sorted(results, key=lambda m: results[m]['mIoU'])
    return ', '.join(f"{NAMES[m]} {results[m]['mIoU']:.2f}" for m in ranked) + ' mIoU'


def replace_between(path: Path, name: str, text: str) -> None:
    """Put ``text`` between ``<!-- name:start -->`` and ``<!-- name:end -->`` in ``path``."""
    source = path.read_text()
    pattern = re.compile(rf'(<!-- {name}:start -->\n).*?(\n<!-- {name}:end -->)', re.S)
    if not pattern.search(source):
        raise ValueError(f'{path}: no <!-- {name}:start --> ... <!-- {name}:end --> markers')
    path.write_text(pattern.sub(lambda m: m.group(1) + text + m.group(2), source))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--write', action='store_true',
                        help='replace the tables in model_zoo.md and README.md')
    args = parser.parse_args(argv)
    results = measure()
    print(table(results))
    print(summary(results))
    if args.write:
        replace_between(ROOT / 'model_zoo.md', 'toy-table', table(results))
        replace_between(ROOT / 'README.md', 'toy-summary', summary(results))
        print('wrote model_zoo.md and README.md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
