"""The eight benchmark datasets, each read from a tiny copy of its real on-disk layout through
its config in configs/_base_/datasets: file pairing, counts, classes and the label values
LoadAnnotations gives (reduce_zero_label: 0 -> 255, k -> k-1, 255 stays)."""
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image

from denseclip.registry import DATASETS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / '_base_' / 'datasets'
RNG = np.random.default_rng(0)
# Raw label values written into every map: the smallest, the largest and 255 (ignore), plus one
# in between; 6 x 8 maps, so every value is present.
SHAPE = (6, 8)


def _label(values: list[int]) -> np.ndarray:
    flat = np.resize(np.asarray(values, np.uint8), SHAPE[0] * SHAPE[1])
    return RNG.permutation(flat).reshape(SHAPE)


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, (*SHAPE, 3), dtype=np.uint8)).save(path)


def _png(path: Path, label: np.ndarray, palette: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(label, mode='L')
    if palette:  # VOC ships palette ('P') PNGs whose indices are the labels
        img = img.convert('P')
        img.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    img.save(path)


def _voc(root: Path, values: list[int], ids=('2007_000033', '2007_000042', '2008_000123')):
    labels = {}
    for i in ids + ('2007_009999', ):  # the last is not in val.txt
        _image(root / 'JPEGImages' / f'{i}.jpg')
        labels[i] = _label(values)
        _png(root / 'SegmentationClass' / f'{i}.png', labels[i], palette=True)
    (root / 'ImageSets' / 'Segmentation').mkdir(parents=True)
    (root / 'ImageSets' / 'Segmentation' / 'val.txt').write_text('\n'.join(ids) + '\n')
    return {i: labels[i] for i in ids}


def _context(root: Path, values: list[int], ids=('2008_000002', '2010_000038')):
    labels = {}
    for i in ids + ('2008_000999', ):
        _image(root / 'JPEGImages' / f'{i}.jpg')
        labels[i] = _label(values)
        _png(root / 'SegmentationClassContext' / f'{i}.png', labels[i])
    (root / 'ImageSets' / 'SegmentationContext').mkdir(parents=True)
    (root / 'ImageSets' / 'SegmentationContext' / 'val.txt').write_text('\n'.join(ids) + '\n')
    return {i: labels[i] for i in ids}


def _coco(root: Path, values: list[int], suffix: str, ids=('000000000139', '000000000285')):
    """COCO-Stuff-164k val as prepared: images, raw maps, mmseg's _labelTrainIds and our
    _instanceTrainIds side by side; ``suffix`` names the files holding ``values``."""
    labels = {}
    ann = root / 'annotations' / 'val2017'
    for i in ids:
        _image(root / 'images' / 'val2017' / f'{i}.jpg')
        labels[i] = _label(values)
        for other in ('.png', '_labelTrainIds.png', '_instanceTrainIds.png'):
            _png(ann / f'{i}{other}', labels[i] if other == suffix else _label([7]))
    return labels


def _cityscapes(root: Path, values: list[int]):
    labels = {}
    for city, frame in (('frankfurt', '000000_000294'), ('lindau', '000001_000019'),
                        ('munster', '000002_000019')):
        stem = f'{city}_{frame}'
        _image(root / 'leftImg8bit' / 'val' / city / f'{stem}_leftImg8bit.png')
        labels[stem] = _label(values)
        gt = root / 'gtFine' / 'val' / city
        _png(gt / f'{stem}_gtFine_labelTrainIds.png', labels[stem])
        _png(gt / f'{stem}_gtFine_labelIds.png', _label([26]))  # raw ids, not read
    return labels


def _ade(root: Path, values: list[int]):
    labels = {}
    for i in ('ADE_val_00000001', 'ADE_val_00000002'):
        _image(root / 'images' / 'validation' / f'{i}.jpg')
        labels[i] = _label(values)
        _png(root / 'annotations' / 'validation' / f'{i}.png', labels[i])
    return labels


def _reduce_zero_label(label: np.ndarray) -> np.ndarray:
    """By hand: 0 -> 255, k -> k - 1, 255 -> 255."""
    out = label.astype(np.int64) - 1
    out[label == 0] = 255
    out[label == 255] = 255
    return out


# base config name -> (number of classes, layout writer, raw label values, reduce_zero_label)
CASES = {
    'voc21': (21, _voc, [0, 1, 15, 20, 255], False),
    'voc20': (20, _voc, [0, 1, 15, 20, 255], True),
    'context60': (60, _context, [0, 1, 33, 59], False),
    'context59': (59, _context, [0, 1, 33, 59], True),
    'coco-object': (81, lambda r, v: _coco(r, v, '_instanceTrainIds.png'), [0, 1, 80, 255],
                    False),
    'coco-stuff171': (171, lambda r, v: _coco(r, v, '_labelTrainIds.png'), [0, 90, 170, 255],
                      False),
    'cityscapes': (19, _cityscapes, [0, 11, 18, 255], False),
    'ade20k': (150, _ade, [0, 1, 75, 150], True),
}


@pytest.mark.parametrize('name', list(CASES))
def test_dataset_reads_its_layout(name, tmp_path):
    num_classes, write, values, reduce = CASES[name]
    cfg = Config.fromfile(str(CONFIGS / f'{name}.py')).test_dataloader.dataset
    root = tmp_path / cfg.data_root
    labels = write(root, values)
    cfg.data_root = str(root)
    cfg.pipeline = [dict(type='LoadAnnotations')]
    with DefaultScope.overwrite_default_scope('mmseg'):  # as the runner, default_scope='mmseg'
        dataset = DATASETS.build(cfg)

    assert len(dataset.metainfo['classes']) == num_classes
    assert len(dataset) == len(labels)
    assert dataset.get_data_info(0)['reduce_zero_label'] is reduce
    seen = set()
    for i in range(len(dataset)):
        sample = dataset[i]
        stem = Path(sample['img_path']).name
        key = next(k for k in labels if stem.startswith(k))
        assert Path(sample['seg_map_path']).name.startswith(key)
        expected = _reduce_zero_label(labels[key]) if reduce else labels[key]
        np.testing.assert_array_equal(sample['gt_seg_map'], expected)
        seen.add(key)
    assert seen == set(labels)


def test_reduce_zero_label_by_hand(tmp_path):
    """VOC20 on one map with known values: background 0 -> 255, aeroplane 1 -> 0,
    car 7 -> 6, tvmonitor 20 -> 19, boundary 255 -> 255."""
    cfg = Config.fromfile(str(CONFIGS / 'voc20.py')).test_dataloader.dataset
    root = tmp_path / 'voc'
    _voc(root, [0], ids=('a', ))
    raw = np.array([[0, 1, 20, 255], [20, 1, 0, 7]], np.uint8)
    _png(root / 'SegmentationClass' / 'a.png', raw, palette=True)
    cfg.update(data_root=str(root), pipeline=[dict(type='LoadAnnotations')])
    with DefaultScope.overwrite_default_scope('mmseg'):
        gt = DATASETS.build(cfg)[0]['gt_seg_map']
    np.testing.assert_array_equal(gt, [[255, 0, 19, 255], [19, 0, 255, 6]])


def test_coco_object_classes_are_background_and_coco_things():
    cls = DATASETS.get('COCOObjectDataset')
    classes = cls.METAINFO['classes']
    assert classes[0] == 'background' and classes[1] == 'person'
    assert classes[80] == 'toothbrush' and len(set(classes)) == 81
    assert len(cls.METAINFO['palette']) == 81


def test_voc20_is_voc21_without_background():
    voc21 = DATASETS.get('PascalVOCDataset').METAINFO
    voc20 = DATASETS.get('PascalVOC20Dataset').METAINFO
    assert voc20['classes'] == voc21['classes'][1:]
    assert voc20['palette'] == voc21['palette'][1:]
