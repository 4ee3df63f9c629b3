"""ADE20K-847 and PASCAL-Context-459 read through their configs' pipelines from tiny copies of
the released layouts: 16-bit TIFF labels above 255 intact, the released ignore values, the
samples paired from the label files, and IoUMetric with the config's ignore_index."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.datasets.transforms import LoadAnnotations
from PIL import Image

from denseclip.registry import DATASETS, METRICS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / '_base_' / 'datasets'
LABEL = np.array([[0, 300], [846, 65535]], np.uint16)  # 300, 846 > 255; 65535 ignored


def dataset_from(config: str, data_root: Path):
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(CONFIGS / config))
    cfg.test_dataloader.dataset.data_root = str(data_root)
    return DATASETS.build(cfg.test_dataloader.dataset), cfg


def write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def ade847_tree(root: Path) -> None:
    write(root / 'images_detectron2/validation/ADE_val_00000001.jpg', np.zeros((2, 2, 3), np.uint8))
    write(root / 'annotations_detectron2/validation/ADE_val_00000001.tif', LABEL)


def pc459_tree(root: Path) -> None:
    for i in ('2008_000002', '2008_000003', '2008_000004'):  # all of VOC2010 is in JPEGImages
        write(root / f'JPEGImages/{i}.jpg', np.zeros((2, 2, 3), np.uint8))
    for i in ('2008_000002', '2008_000004'):
        write(root / f'annotations_detectron2/pc459_val/{i}.tif', LABEL % 459)


def test_ade20k_847_reads_16_bit_tif(tmp_path):
    ade847_tree(tmp_path)
    dataset, cfg = dataset_from('ade20k-847.py', tmp_path)
    assert len(dataset) == 1 and len(dataset.metainfo['classes']) == 847
    assert dataset.ignore_index == cfg.test_evaluator.ignore_index == 65535
    gt = dataset[0]['data_samples'].gt_sem_seg.data[0]
    assert gt.tolist() == LABEL.tolist()  # above 255 and the ignore value kept


def test_pascal_context_459_samples_are_the_label_files(tmp_path):
    pc459_tree(tmp_path)
    dataset, cfg = dataset_from('context459.py', tmp_path)
    stems = [Path(dataset.get_data_info(i)['img_path']).stem for i in range(len(dataset))]
    assert stems == ['2008_000002', '2008_000004']  # 2008_000003 has no label
    assert len(dataset.metainfo['classes']) == 459
    assert dataset.ignore_index == cfg.test_evaluator.ignore_index == 459
    assert dataset[1]['data_samples'].gt_sem_seg.data[0].tolist() == [[0, 300], [387, 357]]


def test_label_without_image_is_an_error(tmp_path):
    pc459_tree(tmp_path)
    (tmp_path / 'JPEGImages/2008_000004.jpg').unlink()
    with pytest.raises(FileNotFoundError, match='1 label maps .* have no image, e.g. .*'
                       '2008_000004.jpg'):
        dataset_from('context459.py', tmp_path)


def test_mmseg_load_annotations_would_wrap_the_labels(tmp_path):
    """Why LoadWideAnnotations: mmseg's LoadAnnotations casts to uint8 (300 -> 44)."""
    ade847_tree(tmp_path)
    dataset, _ = dataset_from('ade20k-847.py', tmp_path)
    assert type(dataset.pipeline.transforms[2]).__name__ == 'LoadWideAnnotations'
    dataset.pipeline.transforms[2] = LoadAnnotations()
    assert dataset[0]['data_samples'].gt_sem_seg.data[0].tolist() == [[0, 44], [78, 255]]


def test_iou_metric_with_the_config_ignore_index(tmp_path):
    """By hand: gt [[300, 65535], [0, 300]], pred [[300, 5], [0, 1]]. Class 300: 1 / 2; class 0:
    1 / 1; class 1: 0 / 1; the ignored pixel (pred 5) counts nowhere: mIoU = 50."""
    ade847_tree(tmp_path)
    dataset, cfg = dataset_from('ade20k-847.py', tmp_path)
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo
    gt = torch.tensor([[[300, 65535], [0, 300]]])
    pred = torch.tensor([[[300, 5], [0, 1]]])
    metric.process({}, [dict(pred_sem_seg=dict(data=pred), gt_sem_seg=dict(data=gt))])
    assert metric.compute_metrics(metric.results)['mIoU'] == pytest.approx(50.0)
