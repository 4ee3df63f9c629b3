"""ADE20K-847 and PASCAL-Context-459: the converters on hand-made inputs in the released
formats, and the datasets reading their output through the configs' pipelines with labels above
255 intact."""
from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

from denseclip.registry import DATASETS

ROOT = Path(__file__).resolve().parents[2]


def tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'tools/dataset_converters' /
                                                  f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dataset_from(config: str, data_root: Path):
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(ROOT / 'configs/_base_/datasets' / config))
    cfg.test_dataloader.dataset.data_root = str(data_root)
    return DATASETS.build(cfg.test_dataloader.dataset), cfg


def test_ade20k_847_conversion_by_hand(tmp_path):
    ade = tool('ade20k_847')
    root = tmp_path / 'ADE20K_2021_17_01'
    folder = root / 'images' / 'ADE' / 'validation'
    folder.mkdir(parents=True)
    # 'wall' (id 2978 = R 110 // 10 * 256 + G 162 -> train id 0), 'sand' (2212 = 8 * 256 + 164
    # -> 54), an id of no 847 class (5 -> ignored) and 'wall' again.
    seg = np.zeros((2, 2, 3), np.uint8)
    seg[0, 0, :2] = (110, 162)
    seg[0, 1, :2] = (85, 164)
    seg[1, 0, :2] = (0, 5)
    seg[1, 1, :2] = (119, 162)  # R // 10 == 11 as well
    Image.fromarray(seg).save(folder / 'ADE_val_00000001_seg.png')
    Image.fromarray(np.full((2, 2, 3), 7, np.uint8)).save(folder / 'ADE_val_00000001.jpg')
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(folder / 'ADE_train_00000001.jpg')
    index = dict(folder=['ADE20K_2021_17_01/images/ADE/validation'] * 2,
                 filename=['ADE_val_00000001.jpg', 'ADE_train_00000001.jpg'])
    (root / 'index_ade20k.pkl').write_bytes(pickle.dumps(index))
    assert ade.main([str(root)]) == 0
    out = root / 'annotations_detectron2/validation/ADE_val_00000001.tif'
    assert not (root / 'annotations_detectron2/validation/ADE_train_00000001.tif').exists()
    label = np.asarray(Image.open(out))
    assert label.dtype == np.uint16
    assert label.tolist() == [[0, 54], [65535, 0]]
    assert ade.short_side_size(600, 1000) == (512, 853)
    assert ade.short_side_size(400, 1000) is None

    # Through the dataset config's pipeline: the labels reach the sample unchanged.
    Image.fromarray(np.full((2, 2), 300, np.uint16)).save(out)  # a train id above 255
    dataset, cfg = dataset_from('ade20k-847.py', root)
    assert len(dataset.METAINFO['classes']) == 847 and len(dataset) == 1
    gt = dataset[0]['data_samples'].gt_sem_seg.data
    assert gt.unique().tolist() == [300]
    assert cfg.test_evaluator.ignore_index == 65535


def test_ade20k_847_missing_index_is_named(tmp_path, capsys):
    assert tool('ade20k_847').main([str(tmp_path)]) == 1
    assert 'index_ade20k.pkl does not exist' in capsys.readouterr().err


def test_pascal_context_459_conversion_by_hand(tmp_path):
    pc = tool('pascal_context_459')
    root = tmp_path / 'VOC2010'
    (root / 'trainval').mkdir(parents=True)
    (root / 'JPEGImages').mkdir()
    (root / 'ImageSets/SegmentationContext').mkdir(parents=True)
    (root / 'ImageSets/SegmentationContext/val.txt').write_text('2008_000002\n2008_000003\n')
    scipy.io.savemat(root / 'trainval/2008_000002.mat',
                     dict(LabelMap=np.array([[1, 459], [300, 2]], np.uint16)))
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(root / 'JPEGImages/2008_000002.jpg')
    assert pc.main([str(root)]) == 0  # 2008_000003 has no .mat: skipped, as released
    label = np.asarray(Image.open(root / 'annotations_detectron2/pc459_val/2008_000002.tif'))
    assert label.tolist() == [[0, 458], [299, 1]]

    dataset, cfg = dataset_from('context459.py', root)
    assert len(dataset.METAINFO['classes']) == 459 and len(dataset) == 1
    gt = dataset[0]['data_samples'].gt_sem_seg.data[0]
    assert gt.tolist() == [[0, 458], [299, 1]]

    scipy.io.savemat(root / 'trainval/2008_000002.mat', dict(LabelMap=np.zeros((2, 2))))
    with pytest.raises(ValueError, match='LabelMap values 0..0; expected 1..459'):
        pc.main([str(root)])
