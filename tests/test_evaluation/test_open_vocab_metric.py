"""OpenVocabIoUMetric (denseclip/evaluation/open_vocab_metric.py) on hand-worked areas, against
mmseg's IoUMetric, and the toy world's open-vocabulary split (configs/_base_/datasets/
toy_open_vocab.py): unseen pixels are 255 in training, seen classes renumbered."""
import math
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.evaluation import IoUMetric
from PIL import Image

from denseclip.evaluation import OpenVocabIoUMetric
from denseclip.registry import DATASETS, METRICS
from denseclip.toy import TOY_CLASSES, TOY_SEEN_CLASSES, TOY_UNSEEN_CLASSES
from denseclip.toy.world import generate_scene, scene_seed

CONFIG = (Path(__file__).resolve().parents[2] / 'configs' / '_base_' / 'datasets'
          / 'toy_open_vocab.py')
CLASSES = ('a', 'b', 'c', 'd')
# Two images; 255 in a label is ignored (whatever is predicted there).
LABELS = [[[0, 0, 1, 1],
           [1, 1, 2, 255]],
          [[3, 3],
           [2, 2]]]
PREDS = [[[0, 0, 1, 1],
          [1, 2, 2, 0]],
         [[3, 2],
          [2, 2]]]
# Per class, intersection I and union U = pred + label - I over the 7 + 4 valid pixels:
#   a: image 1 label 2, pred 2, I 2              -> I 2, U 2 -> IoU 1.0
#   b: image 1 label 4, pred 3, I 3              -> I 3, U 4 -> IoU 0.75
#   c: image 1 label 1, pred 2, I 1 (U 2);
#      image 2 label 2, pred 3, I 2 (U 3)        -> I 3, U 5 -> IoU 0.6
#   d: image 2 label 2, pred 1, I 1              -> I 1, U 2 -> IoU 0.5
# mIoU = (1 + 0.75 + 0.6 + 0.5) / 4 = 0.7125 -> 71.25
# aAcc = (6 + 3) correct / 11 valid = 0.818181... -> 81.82


def samples(labels: Sequence, preds: Sequence) -> List[Dict]:
    """SegDataSample-like dicts of (1, H, W) tensors, as ``IoUMetric.process`` reads them."""
    return [dict(pred_sem_seg=dict(data=torch.tensor([p])),
                 gt_sem_seg=dict(data=torch.tensor([g]))) for g, p in zip(labels, preds)]


def evaluate(metric: IoUMetric, labels: Sequence = LABELS, preds: Sequence = PREDS,
             classes: Sequence[str] = CLASSES) -> Dict[str, float]:
    """Feed one batch per image through ``process`` and return ``evaluate``'s metrics."""
    metric.dataset_meta = dict(classes=list(classes))
    for sample in samples(labels, preds):
        metric.process({}, [sample])
    return metric.evaluate(len(labels))


@pytest.mark.parametrize('unseen, seen_iou, unseen_iou, h_iou', [
    # seen a, b, c: (1 + 0.75 + 0.6) / 3 = 0.783333 -> 78.33; unseen d: 0.5 -> 50.0
    # hIoU = 2 * 0.783333 * 0.5 / (0.783333 + 0.5) = 0.783333 / 1.283333 = 0.610390 -> 61.04
    (['d'], 78.33, 50.0, 61.04),
    # seen a, b: (1 + 0.75) / 2 = 0.875 -> 87.5; unseen c, d: (0.6 + 0.5) / 2 = 0.55 -> 55.0
    # hIoU = 2 * 0.875 * 0.55 / (0.875 + 0.55) = 0.9625 / 1.425 = 0.675439 -> 67.54
    (['d', 'c'], 87.5, 55.0, 67.54),
])
def test_hand_worked_example(unseen, seen_iou, unseen_iou, h_iou):
    metrics = evaluate(OpenVocabIoUMetric(unseen_classes=unseen, iou_metrics=['mIoU']))
    assert metrics['mIoU_seen'] == pytest.approx(seen_iou)
    assert metrics['mIoU_unseen'] == pytest.approx(unseen_iou)
    assert metrics['hIoU'] == pytest.approx(h_iou)
    assert metrics['mIoU'] == pytest.approx(71.25)
    assert metrics['aAcc'] == pytest.approx(81.82)
    assert {'aAcc', 'mIoU', 'mAcc'} <= set(metrics)


def test_built_from_the_registry_and_equal_to_iou_metric():
    cfg = dict(type='OpenVocabIoUMetric', unseen_classes=['b'], iou_metrics=['mIoU', 'mDice'])
    ours = evaluate(METRICS.build(cfg))
    theirs = evaluate(IoUMetric(iou_metrics=['mIoU', 'mDice']))
    assert set(ours) == set(theirs) | {'mIoU_seen', 'mIoU_unseen', 'hIoU'}
    for key, value in theirs.items():
        assert ours[key] == value, key


def test_unseen_class_never_predicted_gives_hiou_0():
    # d is labelled twice, never predicted: IoU 0, so hIoU is 0 whatever the seen mIoU.
    labels, preds = [[[0, 1, 3, 3]]], [[[0, 1, 2, 2]]]
    metrics = evaluate(OpenVocabIoUMetric(unseen_classes=['d']), labels, preds)
    assert metrics['mIoU_unseen'] == 0
    assert metrics['hIoU'] == 0
    # seen: a 1/1, b 1/1, c 0/2 (predicted, never labelled) -> (1 + 1 + 0) / 3 -> 66.67
    assert metrics['mIoU_seen'] == pytest.approx(66.67)


def test_unseen_class_absent_gives_nan():
    # Neither labelled nor predicted: d's IoU is NaN, left out as in mIoU; no group mean left.
    labels, preds = [[[0, 1]]], [[[0, 1]]]
    metrics = evaluate(OpenVocabIoUMetric(unseen_classes=['d']), labels, preds)
    assert metrics['mIoU_seen'] == 100
    assert math.isnan(metrics['mIoU_unseen']) and math.isnan(metrics['hIoU'])


def test_unknown_unseen_class_names_it_and_the_classes():
    metric = OpenVocabIoUMetric(unseen_classes=['d', 'zebra'])
    with pytest.raises(ValueError, match=r"zebra.*\['a', 'b', 'c', 'd'\]"):
        evaluate(metric)


@pytest.mark.parametrize('unseen, message', [('sand', "'sand' is a string"),
                                             ([], 'is empty')])
def test_bad_unseen_argument(unseen, message):
    with pytest.raises(ValueError, match=message):
        OpenVocabIoUMetric(unseen_classes=unseen)


def test_every_class_unseen_is_an_error():
    with pytest.raises(ValueError, match='none is left seen'):
        evaluate(OpenVocabIoUMetric(unseen_classes=list(CLASSES)))


def test_config_lists_equal_the_toy_constants():
    cfg = Config.fromfile(str(CONFIG))
    assert tuple(cfg.seen_classes) == TOY_SEEN_CLASSES
    assert tuple(cfg.unseen_classes) == TOY_UNSEEN_CLASSES
    assert set(TOY_SEEN_CLASSES) | set(TOY_UNSEEN_CLASSES) == set(TOY_CLASSES)
    assert [c for c in TOY_CLASSES if c in TOY_SEEN_CLASSES] == list(TOY_SEEN_CLASSES)
    assert cfg.test_evaluator.unseen_classes == cfg.unseen_classes
    assert cfg.val_evaluator == cfg.test_evaluator
    assert cfg.val_dataloader == cfg.test_dataloader
    assert 'metainfo' not in cfg.test_dataloader.dataset  # evaluated on all 10 classes
    assert cfg.train_dataloader.dataset.metainfo.classes == cfg.seen_classes


def test_toy_training_split_ignores_unseen_pixels(tmp_path):
    cfg = Config.fromfile(str(CONFIG))
    train = cfg.train_dataloader.dataset
    train.data_root = str(tmp_path / 'toy_world_train')
    train.generate.num_images = 4
    full_pipeline = train.pipeline
    train.pipeline = [dict(type='LoadAnnotations')]
    with DefaultScope.overwrite_default_scope('mmseg'):  # as the runner, default_scope='mmseg'
        dataset = DATASETS.build(train)
        assert len(dataset) == 4
        assert tuple(dataset.metainfo['classes']) == TOY_SEEN_CLASSES
        gen = train.generate
        for index in range(2):
            gt = dataset[index]['gt_seg_map']
            written = np.array(Image.open(Path(train.data_root, 'ann_dir/train',
                                               f'{index:05d}.png')))
            raw = generate_scene(scene_seed(gen.seed, index), gen.size).label
            np.testing.assert_array_equal(written, raw)
            expected = np.full_like(raw, 255)
            for new, name in enumerate(TOY_SEEN_CLASSES):
                expected[raw == TOY_CLASSES.index(name)] = new
            np.testing.assert_array_equal(gt, expected)
        # The whole training pipeline runs and keeps only seen indices and 255.
        train.pipeline = full_pipeline
        packed = DATASETS.build(train)[0]
    gt = packed['data_samples'].gt_sem_seg.data
    # At most the crop: a scene resized below 224 (ratio < 1) is cropped to its own size; the
    # model's data preprocessor pads the batch.
    assert gt.shape[-2] <= 224 and gt.shape[-1] <= 224
    assert set(gt.unique().tolist()) <= set(range(len(TOY_SEEN_CLASSES))) | {255}
