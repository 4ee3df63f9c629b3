"""tools/train.py fails before anything runs, in one line naming the file and the key: a typo in
a top-level key or a dataset argument, a syntax error in a base file, a truncated --resume."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs' / 'mta_clip' / 'mta-clip_toy-vit-p16_toy-seen.py'


@pytest.fixture(scope='module')
def train_tool():
    spec = importlib.util.spec_from_file_location('train_tool', ROOT / 'tools' / 'train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def leaf(tmp_path: Path, body: str) -> str:
    path = tmp_path / 'leaf.py'
    path.write_text(f"_base_ = [{str(CONFIG)!r}]\n{body}")
    return str(path)


@pytest.mark.parametrize('body, message', [
    ('train_dataloadr = dict(batch_size=2)\n',
     "'train_dataloadr' is not a config key the runner reads; did you mean 'train_dataloader'?"),
    ("train_dataloader = dict(dataset=dict(num_imags=10))\n",
     'train_dataloader.dataset.num_imags is not a parameter of ToyWorldDataset'),
    # an argument the head passes on to mmdet's Mask2FormerHead through **kwargs
    ("model = dict(decode_head=dict(num_querys=4))\n",
     "model.decode_head.num_querys is not a parameter of MTACLIPHead (did you mean "
     "'num_queries'?)"),
])
def test_config_mistakes_fail_in_one_line(train_tool, tmp_path, capsys, body, message):
    assert train_tool.main([leaf(tmp_path, body), '--work-dir', str(tmp_path / 'w')]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith('train.py: error: ') and message in err and '\n' not in err
    assert not (tmp_path / 'w').exists()


def test_syntax_error_and_truncated_resume(train_tool, tmp_path, capsys):
    (tmp_path / 'broken.py').write_text('model = dict(\n')
    assert train_tool.main([str(tmp_path / 'broken.py')]) == 1
    assert 'broken.py:1: syntax error' in capsys.readouterr().err
    (tmp_path / 'iter_10.pth').write_bytes(b'PK\x03\x04 half a checkpoint')
    assert train_tool.main([str(CONFIG), '--work-dir', str(tmp_path / 'w'),
                            '--resume', str(tmp_path / 'iter_10.pth')]) == 1
    err = capsys.readouterr().err
    assert 'iter_10.pth: not a complete torch checkpoint' in err and 'truncated' in err
