"""The browser demo's upload handler in-process (the toy CLIP, superpixel masks): a picture of
more than MAX_PIXELS is downscaled on decoding, and says so; a truncated one is refused."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def app():
    sys.path.insert(0, str(REPO / 'demo'))
    spec = importlib.util.spec_from_file_location('demo_app', REPO / 'demo' / 'app.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def handlers(app):
    args = app.parse_args([])  # the toy CLIP, offline
    namer = app.MaskNamer(app.build_segmenter(args))
    return app.DemoHandlers(namer, app.SuperpixelMasks())


def test_a_huge_picture_in_a_small_file_is_downscaled(app, handlers, tmp_path, monkeypatch):
    monkeypatch.setattr(app, 'MAX_PIXELS', 300 * 300)  # the bound, scaled down for the test
    picture = np.zeros((900, 1200, 3), np.uint8)
    picture[:, 600:] = (200, 30, 30)
    path = tmp_path / 'huge.png'
    Image.fromarray(picture).save(path)
    assert path.stat().st_size < 20_000  # far under any upload limit
    state, canvas, status, _ = handlers.load(str(path))
    h, w = state['image'].shape[:2]
    assert h * w <= 300 * 300 and abs(w / h - 4 / 3) < 0.01
    assert '1200x900, downscaled to' in status and 'at most 0.1 megapixels' in status


def test_a_truncated_jpeg_is_refused(handlers, tmp_path):
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(tmp_path / 'full.jpg')
    data = (tmp_path / 'full.jpg').read_bytes()
    (tmp_path / 'cut.jpg').write_bytes(data[:len(data) // 2])
    state, canvas, status, _ = handlers.load(str(tmp_path / 'cut.jpg'))
    assert canvas is None and state.get('image') is None
    assert '**Not an image:** `cut.jpg`' in status and 'truncated or corrupt' in status
