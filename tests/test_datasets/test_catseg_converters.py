"""tools/dataset_converters/ade20k_847.py and pascal_context_459.py on hand-made inputs in the
released source formats (an ADE20K_2021_17_01 index pickle with ``*_seg.png``; PASCAL-Context
``trainval/*.mat``), label values worked out by hand from CAT-Seg@6d3a188's
datasets/prepare_ade20k_full.py and prepare_pascal_context_459.py."""
from __future__ import annotations

import hashlib
import importlib.util
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

TOOLS = Path(__file__).resolve().parents[2] / 'tools' / 'dataset_converters'


def tool(name: str):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # --nproc > 1 pickles its functions by module name
    spec.loader.exec_module(module)
    return module


def ade_tree(root: Path, seg: np.ndarray, image: np.ndarray) -> Path:
    """ADE20K_2021_17_01 with one val image (and a train image the release skips)."""
    folder = root / 'images' / 'ADE' / 'validation' / 'abbey'
    folder.mkdir(parents=True)
    Image.fromarray(seg).save(folder / 'ADE_val_00000001_seg.png')
    Image.fromarray(image).save(folder / 'ADE_val_00000001.jpg')
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(folder / 'ADE_train_00000001.jpg')
    index = dict(folder=['ADE20K_2021_17_01/images/ADE/validation/abbey'] * 2,
                 filename=['ADE_val_00000001.jpg', 'ADE_train_00000001.jpg'])
    (root / 'index_ade20k.pkl').write_bytes(pickle.dumps(index))
    return root / 'annotations_detectron2' / 'validation' / 'ADE_val_00000001.tif'


def test_ade20k_847_class_ids_by_hand(tmp_path):
    # class = R // 10 * 256 + G: 'wall' (2978 = 11 * 256 + 162 -> train id 0), 'sand' (2212 =
    # 8 * 256 + 164 -> 54), 'altar' (3108 = 12 * 256 + 36 -> 300), 'adding machine' (3148 =
    # 12 * 256 + 76 -> 846, the last), id 5 (no 847 class -> 65535) and 'wall' with R = 119.
    seg = np.zeros((2, 3, 3), np.uint8)
    seg[..., 2] = 200  # B holds instances; ignored
    seg[0, 0, :2], seg[0, 1, :2], seg[0, 2, :2] = (110, 162), (85, 164), (120, 36)
    seg[1, 0, :2], seg[1, 1, :2], seg[1, 2, :2] = (129, 76), (0, 5), (119, 162)
    out = ade_tree(tmp_path / 'ADE20K_2021_17_01', seg, np.full((2, 3), 7, np.uint8))
    ade = tool('ade20k_847')
    assert ade.main([str(tmp_path / 'ADE20K_2021_17_01')]) == 0
    label = np.asarray(Image.open(out))
    assert label.dtype == np.uint16
    assert label.tolist() == [[0, 54, 300], [846, 65535, 0]]
    assert not (out.parent / 'ADE_train_00000001.tif').exists()  # validation only
    image = Image.open(tmp_path / 'ADE20K_2021_17_01/images_detectron2/validation/'
                       'ADE_val_00000001.jpg')
    assert image.mode == 'L' and image.size == (3, 2)  # kept in its own mode, as released
    assert not list(out.parent.glob('*.tmp'))


def test_ade20k_847_resizes_short_side_to_512(tmp_path):
    # 520 x 1040 -> 512 x 1024 (prepare_ade20k_full.py: w >= h > 512); labels nearest.
    seg = np.zeros((520, 1040, 3), np.uint8)
    seg[:, :520, :2] = (110, 162)  # wall
    seg[:, 520:, :2] = (85, 164)  # sand
    out = ade_tree(tmp_path / 'ADE20K_2021_17_01', seg, np.zeros((520, 1040, 3), np.uint8))
    ade = tool('ade20k_847')
    assert ade.main([str(tmp_path / 'ADE20K_2021_17_01'), '--nproc', '2']) == 0
    label = np.asarray(Image.open(out))
    assert label.shape == (512, 1024)
    assert (label[:, :512] == 0).all() and (label[:, 512:] == 54).all()
    image = Image.open(out.parents[2] / 'images_detectron2/validation/ADE_val_00000001.jpg')
    assert image.size == (1024, 512)
    assert ade.short_side_size(600, 1000) == (512, 853)
    assert ade.short_side_size(1000, 600) == (853, 512)
    assert ade.short_side_size(400, 1000) is None


def test_ade20k_847_errors_name_the_missing_file(tmp_path, caplog):
    ade = tool('ade20k_847')
    assert ade.main([str(tmp_path)]) == 1
    assert 'index_ade20k.pkl does not exist' in caplog.text
    out = ade_tree(tmp_path / 'ADE20K_2021_17_01', np.zeros((2, 2, 3), np.uint8),
                   np.zeros((2, 2, 3), np.uint8))
    (out.parents[2] / 'images/ADE/validation/abbey/ADE_val_00000001_seg.png').unlink()
    assert ade.main([str(tmp_path / 'ADE20K_2021_17_01')]) == 1
    assert 'ADE_val_00000001_seg.png (of ADE_val_00000001.jpg' in caplog.text


def test_released_val_list_is_kept_byte_for_byte():
    """CAT-Seg@6d3a188 datasets/pascalcontext_val.txt: 5,104 sorted ids, no final newline."""
    data = (TOOLS / 'catseg_pascalcontext_val.txt').read_bytes()
    assert hashlib.md5(data).hexdigest() == 'cec0bc6c863d2c4102d5d64ace6d41fb'
    ids = data.decode().split('\n')
    assert len(ids) == len(set(ids)) == 5104 and ids == sorted(ids)


def voc2010(root: Path) -> Path:
    (root / 'trainval').mkdir(parents=True)
    # 2008_000002 and 2008_000003 are in the released val list, 2008_000008 is not.
    for i in ('2008_000002', '2008_000008'):
        scipy.io.savemat(root / f'trainval/{i}.mat',
                         dict(LabelMap=np.array([[1, 459], [300, 2]], np.uint16)))
    return root / 'annotations_detectron2' / 'pc459_val'


@pytest.mark.parametrize('nproc', [1, 2])
def test_pascal_context_459_labels_by_hand(tmp_path, nproc):
    out = voc2010(tmp_path / 'VOC2010')
    pc = tool('pascal_context_459')
    assert pc.main([str(tmp_path / 'VOC2010'), '--nproc', str(nproc)]) == 0
    label = np.asarray(Image.open(out / '2008_000002.tif'))
    assert label.dtype == np.uint16
    assert label.tolist() == [[0, 458], [299, 1]]  # LabelMap - 1
    # 2008_000003 has no .mat (skipped, as released); 2008_000008 is not a released val id.
    assert sorted(p.name for p in out.iterdir()) == ['2008_000002.tif']


def test_pascal_context_459_split_and_errors(tmp_path, caplog):
    root = tmp_path / 'VOC2010'
    pc = tool('pascal_context_459')
    assert pc.main([str(root)]) == 1
    assert 'trainval (the unpacked 459-class annotations' in caplog.text
    out = voc2010(root)
    split = tmp_path / 'ids.txt'
    split.write_text('2010_000001\n')
    assert pc.main([str(root), '--split', str(split)]) == 1
    assert 'none of the 1 ids of' in caplog.text
    split.write_text('2008_000008\n')
    scipy.io.savemat(root / 'trainval/2008_000008.mat', dict(LabelMap=np.full((2, 2), 7.0)))
    assert pc.main([str(root), '--split', str(split)]) == 0  # a float LabelMap works too
    assert np.asarray(Image.open(out / '2008_000008.tif')).tolist() == [[6, 6], [6, 6]]
    scipy.io.savemat(root / 'trainval/2008_000008.mat', dict(LabelMap=np.zeros((2, 2))))
    assert pc.main([str(root), '--split', str(split)]) == 1
    assert '2008_000008.mat: LabelMap values 0..0; expected 1..459' in caplog.text
