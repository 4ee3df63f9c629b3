"""``demo/image_demo.py`` end to end with the bundled toy CLIP: the picture, the printed areas,
and every bad input (message on stderr, non-zero exit, no file written)."""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from denseclip.apis import OpenVocabSegmenter
from denseclip.models.text import Vocabulary
from denseclip.toy import TOY_CLASSES, generate_scene

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'demo' / 'image_demo.py'
TOY_EXAMPLE = REPO / 'demo' / 'examples' / 'toy_world.png'
TOY_CONFIG = REPO / 'configs' / 'sclip' / 'sclip_toy-vit-p16_toy.py'
AREA_LINE = re.compile(r'^\s*(\d+\.\d+)%  (.+)$')


@pytest.fixture(scope='module')
def image_demo():
    """The script as a module, to call ``main(argv)`` in-process (no interpreter start-up)."""
    spec = importlib.util.spec_from_file_location('image_demo', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def toy_segmenter():
    return OpenVocabSegmenter.from_config(TOY_CONFIG)


def run_script(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def printed_areas(stdout: str) -> dict[str, float]:
    return {m[2]: float(m[1]) for m in map(AREA_LINE.match, stdout.splitlines()) if m}


def expected_areas(segmenter, image, classes: str) -> dict[str, float]:
    result = segmenter(image, Vocabulary.from_string(classes))
    return {name: round(100 * area, 2) for name, area in result.areas().items()}


def test_no_arguments_segments_the_bundled_picture(tmp_path, toy_segmenter):
    proc = run_script([], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert 'TOY model' in proc.stdout and 'NOT a real CLIP' in proc.stdout
    out = tmp_path / 'toy_world_seg.png'
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]
    image = np.asarray(Image.open(TOY_EXAMPLE).convert('RGB'))
    picture = np.asarray(Image.open(out))
    assert picture.shape == image.shape
    # The classes printed (and drawn in the legend) are the segmenter's own prediction.
    result = toy_segmenter(image, Vocabulary.from_string(','.join(TOY_CLASSES)))
    expected = {name: round(100 * area, 2) for name, area in result.areas().items()}
    assert list(printed_areas(proc.stdout)) == list(expected)
    assert printed_areas(proc.stdout) == pytest.approx(expected, abs=0.02)
    assert np.abs(picture.astype(int) - result.overlay().astype(int)).mean() < 1.0


def test_synonyms_heatmaps_and_rgba_input(tmp_path, toy_segmenter):
    scene = generate_scene(7, 200)
    rgba = np.dstack([scene.image, np.full(scene.image.shape[:2], 255, np.uint8)])
    Image.fromarray(rgba, 'RGBA').save(tmp_path / 'scene.png')
    first, *middle, last = TOY_CLASSES
    classes = ','.join([f'{first};{first} shape', *middle, f'{last};beach'])  # with synonyms
    (tmp_path / 'out').mkdir()
    proc = run_script(['scene.png', '--classes', classes, '--out', 'out/seg.png', '--heatmaps'],
                      tmp_path)
    assert proc.returncode == 0, proc.stderr
    grid = np.asarray(Image.open(tmp_path / 'out' / 'seg.png'))
    assert grid.shape[0] > 200 and grid.shape[1] >= 200  # overlay with the heat maps below
    assert printed_areas(proc.stdout) == pytest.approx(
        expected_areas(toy_segmenter, scene.image, classes), abs=0.02)
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['seg.png']


@pytest.mark.parametrize('kind', ['gray', 'uint16'])
def test_gray_and_16_bit_pictures(kind, tmp_path, monkeypatch, image_demo, capsys):
    image = generate_scene(2, 96).image
    if kind == 'gray':
        Image.fromarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)).save(tmp_path / 'in.png')
    else:
        cv2.imwrite(str(tmp_path / 'in.png'), image[..., ::-1].astype(np.uint16) * 257)
    monkeypatch.chdir(tmp_path)
    assert image_demo.main(['in.png', '--classes', 'sky,grass,sand,water,red circle']) == 0
    assert Image.open(tmp_path / 'in_seg.png').size == (96, 96)
    assert 'class areas' in capsys.readouterr().out


@pytest.mark.parametrize('args, message', [
    (['missing.png'], 'image not found: missing.png'),
    (['corrupt.png'], 'corrupt.png: cannot decode the file as an image'),
    (['notes.txt'], 'notes.txt: cannot decode the file as an image'),
    (['truncated.jpg'], 'truncated.jpg: the image data is truncated or corrupt'),
    (['truncated.jpg', '--out', 'good.png'], 'truncated.jpg: the image data is truncated'),
    (['good.png', '--classes', ''], 'the class list is empty'),
    (['good.png', '--classes', 'sky, ,grass'], "empty name in class ' '"),
    (['good.png', '--classes', 'sky,grass,sky'], "duplicate class 'sky'"),
    (['good.png', '--classes', 'sky;grass,grass'], "duplicate class name 'grass'"),
    (['good.png', '--out', 'seg.txt'], "unknown picture extension '.txt'"),
    (['good.png', '--out', 'nowhere/seg.png'], 'directory nowhere does not exist'),
    (['good.png', '--model', 'ViT-B-16'], '--classes is required'),
    (['good.png', '--config', 'x.py', '--model', 'ViT-B-16'], '--config sets the method'),
])
def test_bad_input_writes_nothing(args, message, tmp_path, monkeypatch, image_demo, capsys):
    Image.fromarray(generate_scene(0, 64).image).save(tmp_path / 'good.png')
    (tmp_path / 'corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 40)
    (tmp_path / 'notes.txt').write_text('not a picture')
    Image.fromarray(generate_scene(1, 64).image).save(tmp_path / 'full.jpg')
    data = (tmp_path / 'full.jpg').read_bytes()
    (tmp_path / 'truncated.jpg').write_bytes(data[:len(data) // 2])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.chdir(tmp_path)
    assert image_demo.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith('image_demo.py: error: ') and message in err, err
    # nothing written, nothing overwritten (an existing --out keeps its bytes)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_bad_input_exit_status_of_the_script(tmp_path):
    proc = run_script(['missing.png'], tmp_path)
    assert proc.returncode == 1
    assert 'image_demo.py: error: image not found: missing.png' in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_out_keeps_the_umask_and_an_existing_files_mode(tmp_path, monkeypatch, image_demo):
    """The atomic write's temporary file is 0600; the picture written is not."""
    Image.fromarray(generate_scene(0, 64).image).save(tmp_path / 'in.png')
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o027)
    try:
        assert image_demo.main(['in.png', '--out', 'new.png']) == 0
        (tmp_path / 'kept.png').write_bytes(b'old')
        os.chmod(tmp_path / 'kept.png', 0o604)
        assert image_demo.main(['in.png', '--out', 'kept.png']) == 0
    finally:
        os.umask(old)
    assert (tmp_path / 'new.png').stat().st_mode & 0o777 == 0o640  # 0o666 & ~0o027
    assert (tmp_path / 'kept.png').stat().st_mode & 0o777 == 0o604
    assert Image.open(tmp_path / 'kept.png').size == (64, 64)  # replaced, mode kept
