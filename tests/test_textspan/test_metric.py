"""ForegroundSegMetric by hand, and against a transcription of the released functions
(utils/segmentation_utils.py ``batch_pix_accuracy``, ``batch_intersection_union``@49f70f3)."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from denseclip.evaluation.textspan_metric import (ForegroundSegMetric, average_precision,
                                                  intersection_union, pixel_correct)


def sample(pred, gt, scores) -> dict:
    s = SegDataSample()
    s.pred_sem_seg = PixelData(data=torch.tensor(pred)[None])
    s.gt_sem_seg = PixelData(data=torch.tensor(gt)[None])
    s.seg_logits = PixelData(data=torch.tensor(scores, dtype=torch.float32))
    return s.to_dict()


def test_counts_by_hand():
    pred = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 0, 0]])
    gt = torch.tensor([[1, 0, 0], [0, 0, 1], [1, 0, 0]])
    assert pixel_correct(pred, gt) == (7, 9)
    inter, union = intersection_union(pred, gt)
    assert inter.tolist() == [5, 2] and union.tolist() == [7, 4]


def test_ap_by_hand():
    gt = torch.tensor([[1, 0]])
    # flattened [bg; fg] labels 0 1 1 0, scores .4 .3 .6 .7: ranked .7(0) .6(1) .4(0) .3(1)
    scores = torch.tensor([[[0.4, 0.3]], [[0.6, 0.7]]])
    assert average_precision(scores, gt) == pytest.approx(0.5 * 1 / 2 + 0.5 * 2 / 4)
    perfect = torch.tensor([[[0.1, 0.8]], [[0.9, 0.2]]])
    assert average_precision(perfect, gt) == pytest.approx(1.0)


def test_metric_over_a_dataset_by_hand():
    metric = ForegroundSegMetric()
    metric.process({}, [sample([[1, 1], [0, 0]], [[1, 0], [0, 0]],
                               [[[0.4, 0.3], [1., 1.]], [[0.6, 0.7], [0., 0.]]]),
                        sample([[0, 0], [0, 0]], [[1, 1], [1, 1]],
                               [[[0., 0.], [0., 0.]], [[1., 1.], [1., 1.]]])])
    out = metric.compute_metrics(metric.results)
    # correct 3 + 0 of 8; bg: inter 2 + 0, union 3 + 4; fg: inter 1 + 0, union 2 + 4
    assert out['pixAcc'] == pytest.approx(100 * 3 / 8)
    assert out['IoU.background'] == pytest.approx(100 * 2 / 7)
    assert out['IoU.foreground'] == pytest.approx(100 * 1 / 6)
    assert out['mIoU'] == pytest.approx(100 * (2 / 7 + 1 / 6) / 2)
    # image 1: [bg; fg] labels 0 1 1 1 | 1 0 0 0, scores .4 .3 1 1 | .6 .7 0 0; ranked
    # 1(1) 1(1) .7(0) .6(1) .4(0) .3(1) 0 0: precision at the positives 1, 1, 3/4, 4/6 (the
    # two 1.0 scores tie: one threshold, precision 2/2); image 2 is perfect
    ap1 = (1 + 1 + 3 / 4 + 4 / 6) / 4
    assert out['mAP'] == pytest.approx(100 * (ap1 + 1.0) / 2)


def released_counts(pred: torch.Tensor, gt: torch.Tensor):
    """batch_pix_accuracy and batch_intersection_union on output = [pred == 0, pred == 1]."""
    output = torch.stack([pred == 0, pred == 1]).float()
    _, p = torch.max(output, 0)
    p, t = p.numpy() + 1, gt.numpy() + 1
    labeled = np.sum(t > 0)
    correct = np.sum((p == t) * (t > 0))
    p = p * (t > 0).astype(p.dtype)
    inter = p * (p == t)
    area_inter, _ = np.histogram(inter, bins=2, range=(1, 2))
    area_pred, _ = np.histogram(p, bins=2, range=(1, 2))
    area_lab, _ = np.histogram(t, bins=2, range=(1, 2))
    return correct, labeled, area_inter, area_pred + area_lab - area_inter


def test_counts_equal_the_released_functions():
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        pred = torch.randint(0, 2, (7, 9), generator=gen)
        gt = torch.randint(0, 2, (7, 9), generator=gen)
        correct, labeled, inter, union = released_counts(pred, gt)
        assert pixel_correct(pred, gt) == (correct, labeled)
        ours = intersection_union(pred, gt)
        assert ours[0].tolist() == inter.tolist() and ours[1].tolist() == union.tolist()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r'prediction \(2, 2\) and label \(2, 3\)'):
        pixel_correct(torch.zeros(2, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 2\).*\[0, 255\]'):
        intersection_union(torch.zeros(2, 2), torch.tensor([[0, 255], [1, 0]]))
    metric = ForegroundSegMetric()
    with pytest.raises(ValueError, match=r'seg_logits \(3, 2, 2\)'):
        metric.process({}, [sample([[0, 0], [0, 0]], [[0, 0], [0, 0]],
                                   np.zeros((3, 2, 2)).tolist())])
