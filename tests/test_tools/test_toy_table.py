"""tools/toy_table.py: the documented toy rows are what the code measures now, and --write puts
the table between its markers."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def toy_table():
    spec = importlib.util.spec_from_file_location('toy_table', ROOT / 'tools' / 'toy_table.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_documented_rows_are_measured_now(toy_table):
    """Two methods measured afresh give the rows model_zoo.md and README.md show."""
    results = toy_table.measure(('vanilla', 'maskclip'))
    zoo, readme = (ROOT / 'model_zoo.md').read_text(), (ROOT / 'README.md').read_text()
    for line in toy_table.table(results).splitlines()[2:]:
        assert line in zoo, line
    for method, metrics in results.items():
        assert f"{toy_table.NAMES[method]} {metrics['mIoU']:.2f}" in readme


def test_write_replaces_only_between_the_markers(toy_table, tmp_path):
    doc = tmp_path / 'doc.md'
    doc.write_text('before\n<!-- toy-table:start -->\nold\nrows\n<!-- toy-table:end -->\nafter\n')
    toy_table.replace_between(doc, 'toy-table', 'new')
    assert doc.read_text() == ('before\n<!-- toy-table:start -->\nnew\n'
                               '<!-- toy-table:end -->\nafter\n')
    with pytest.raises(ValueError, match='no <!-- toy-summary:start -->'):
        toy_table.replace_between(doc, 'toy-summary', 'x')
    results = {'sclip': dict(mIoU=1.234, mIoU_seen=2, mIoU_unseen=3, hIoU=4, aAcc=5)}
    assert toy_table.table(results).splitlines()[2] == (
        '| sclip | `python tools/test.py configs/sclip/sclip_toy-vit-p16_toy.py` | 1.23 | 2.00 | '
        '3.00 | 4.00 | 5.00 |')
    assert toy_table.summary(results) == 'SCLIP 1.23 mIoU'
