"""tools/dataset_converters/coco_object.py: the raw COCO-Stuff id -> COCO-Object id mapping
with values worked out by hand, the command line on a generated COCO-Stuff tree, its errors."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / 'tools' / 'dataset_converters' / 'coco_object.py'


@pytest.fixture(scope='module')
def converter():
    spec = importlib.util.spec_from_file_location('coco_object', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# raw COCO-Stuff id -> expected COCO-Object id, by hand: raw id = COCO category id - 1; the
# things' category ids skip 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 (never annotated).
BY_HAND = {
    0: 1,  # person (category 1), the first thing
    10: 11,  # fire hydrant (category 11)
    12: 12,  # stop sign (category 13): the first after the gap at raw 11
    26: 25,  # umbrella (category 28): after the gaps at raw 11 and 25
    89: 80,  # toothbrush (category 90), the last thing
    91: 0,  # banner (category 92), the first stuff class -> background
    181: 0,  # wood (category 182), the last stuff class -> background
    255: 0,  # unlabelled -> background, as the reference converter (every raw id > 90)
}


def test_mapping_by_hand(converter):
    raw = np.array(list(BY_HAND), np.uint8).reshape(2, 4)
    expected = np.array(list(BY_HAND.values()), np.uint8).reshape(2, 4)
    out = converter.convert_label(raw)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)


def test_every_thing_once(converter):
    """The 80 things map onto 1..80 in order; the 91 stuff ids onto 0."""
    things = np.array(converter.THING_CATEGORY_IDS) - 1
    assert len(things) == 80 and np.all(np.diff(things) > 0) and things.max() == 89
    np.testing.assert_array_equal(converter.LUT[things], np.arange(1, 81))
    assert np.all(converter.LUT[91:182] == 0)


@pytest.mark.parametrize('bad', [11, 90, 182, 254])
def test_ids_coco_stuff_never_uses_are_refused(converter, bad):
    """Unused thing slots (11, 90) and ids past the stuff range (182-254) mean the input is not
    a raw COCO-Stuff map; the reference would have copied them through as wrong classes."""
    raw = np.array([[0, bad], [91, 255]], np.uint8)
    with pytest.raises(ValueError, match=rf'bad\.png: raw ids \[{bad}\]'):
        converter.convert_label(raw, where='bad.png')


def test_rgb_map_is_refused(converter):
    with pytest.raises(ValueError, match='one-channel uint8'):
        converter.convert_label(np.zeros((2, 2, 3), np.uint8), where='x.png')


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_command_line_converts_the_val_split(tmp_path):
    rng = np.random.default_rng(0)
    ann = tmp_path / 'coco_stuff164k' / 'annotations' / 'val2017'
    ann.mkdir(parents=True)
    valid = np.array(list(BY_HAND), np.uint8)
    raws = {}
    for name in ('000000000139', '000000000285'):
        raws[name] = rng.choice(valid, size=(5, 7)).astype(np.uint8)
        Image.fromarray(raws[name]).save(ann / f'{name}.png')
        # mmseg's converted labels sit in the same folder and must be skipped
        Image.fromarray(np.full((5, 7), 170, np.uint8)).save(ann / f'{name}_labelTrainIds.png')
    result = _run(tmp_path / 'coco_stuff164k')
    assert result.returncode == 0, result.stderr
    lut = np.zeros(256, np.uint8)
    lut[list(BY_HAND)] = list(BY_HAND.values())
    for name, raw in raws.items():
        out = np.asarray(Image.open(ann / f'{name}_instanceTrainIds.png'))
        np.testing.assert_array_equal(out, lut[raw])
    assert not list(ann.glob('*_labelTrainIds_instanceTrainIds.png'))


def test_command_line_help():
    result = _run('--help')
    assert result.returncode == 0 and 'COCO-Object' in result.stdout


def test_not_a_coco_stuff_folder(tmp_path):
    (tmp_path / 'images' / 'val2017').mkdir(parents=True)
    result = _run(tmp_path)
    assert result.returncode != 0
    assert f'{tmp_path}/annotations/val2017 is not a directory' in result.stderr
    assert 'COCO-Stuff-164k layout' in result.stderr


def test_folder_without_raw_maps(tmp_path):
    ann = tmp_path / 'annotations' / 'val2017'
    ann.mkdir(parents=True)
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(ann / '1_labelTrainIds.png')
    result = _run(tmp_path)
    assert result.returncode != 0 and 'holds no raw label map' in result.stderr
