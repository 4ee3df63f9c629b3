"""``demo/image_demo.py --phrase`` with the bundled toy CLIP: the picture, the printed box, and
bad input (message on stderr, non-zero exit, no file written)."""
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'demo' / 'image_demo.py'


@pytest.fixture(scope='module')
def image_demo():
    spec = importlib.util.spec_from_file_location('image_demo', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_phrase_mode_writes_heatmap_and_box(tmp_path, monkeypatch, image_demo, capsys):
    monkeypatch.chdir(tmp_path)
    assert image_demo.main(['--phrase', 'the red circle']) == 0
    out = capsys.readouterr().out
    match = re.search(r"'the red circle': box \((\d+), (\d+), (\d+), (\d+)\), score", out)
    assert match, out
    picture = np.asarray(Image.open(tmp_path / 'toy_world_phrase.png'))
    source = np.asarray(Image.open(REPO / 'demo' / 'examples' / 'toy_world.png').convert('RGB'))
    assert picture.shape == source.shape


@pytest.mark.parametrize('args,message', [
    (['--phrase', ''], 'phrase is empty'),
    (['--phrase', ' '.join(['red'] * 80)], 'context holds 77'),
    (['--phrase', 'a dog', '--method', 'sclip'], 'drop --method'),
    (['--phrase', 'a dog', '--classes', 'dog'], 'drop --classes'),
])
def test_phrase_mode_bad_input(args, message, tmp_path, monkeypatch, image_demo, capsys):
    monkeypatch.chdir(tmp_path)
    assert image_demo.main(args) == 1
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_phrase_mode_tiny_picture(tmp_path, monkeypatch, image_demo, capsys):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.zeros((10, 40, 3), np.uint8)).save(tmp_path / 'tiny.png')
    assert image_demo.main(['tiny.png', '--phrase', 'a dog']) == 1
    assert 'smaller than one patch' in capsys.readouterr().err
    assert not (tmp_path / 'tiny_phrase.png').exists()
