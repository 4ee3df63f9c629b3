"""Grounding metrics by hand; the ZSGNet reader and the toy phrases."""
import json

import numpy as np
import pytest
from PIL import Image

from denseclip.datasets.grounding import (PackPhraseInputs, ToyPhraseDataset,
                                          ZSGNetDataset)
from denseclip.evaluation.grounding_metric import (BoxAccuracyMetric, PointingGameMetric,
                                                   box_iou)
from denseclip.toy.world import generate_scene, scene_phrases, scene_seed


def test_box_iou_by_hand():
    # 10x10 and 10x10 shifted by 5 in x: overlap 5x10 = 50, union 150
    np.testing.assert_allclose(box_iou([[0, 0, 10, 10], [0, 0, 4, 4], [0, 0, 2, 2]],
                                       [[5, 0, 15, 10], [0, 0, 4, 4], [3, 3, 5, 5]]),
                               [1 / 3, 1.0, 0.0])


def test_box_accuracy_by_hand():
    metric = BoxAccuracyMetric(iou_thr=0.5)
    metric.process(None, [
        dict(pred_bbox=[0, 0, 10, 10], gt_bbox=[0, 0, 10, 10]),     # IoU 1
        dict(pred_bbox=[0, 0, 10, 10], gt_bbox=[5, 0, 15, 10]),     # IoU 1/3
        dict(pred_bbox=[0, 0, 10, 10], gt_bbox=[0, 0, 10, 20]),     # IoU 1/2: not > 0.5
        dict(pred_bbox=[0, 0, 10, 10], gt_bbox=[0, 0, 10, 19])])    # IoU 100/190 > 0.5
    out = metric.compute_metrics(metric.results)
    assert out['acc@0.5'] == 50.0
    assert out['mIoU_box'] == pytest.approx(round((1 + 1 / 3 + 0.5 + 100 / 190) / 4 * 100, 2))
    with pytest.raises(ValueError, match='iou_thr'):
        BoxAccuracyMetric(iou_thr=1.5)


def test_pointing_game_by_hand():
    metric = PointingGameMetric()
    metric.process(None, [dict(pred_point=[5, 5], gt_bbox=[0, 0, 10, 10]),
                          dict(pred_point=[10, 0], gt_bbox=[0, 0, 10, 10]),  # border: a hit
                          dict(pred_point=[10.5, 5], gt_bbox=[0, 0, 10, 10])])
    assert metric.compute_metrics(metric.results) == {'pointing': pytest.approx(66.67)}


def test_zsgnet_csv_flickr_and_vg_columns(tmp_path):
    (tmp_path / 'imgs').mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / 'imgs' / '123.jpg')
    (tmp_path / 'flickr.csv').write_text(
        'img_id,bbox,query\n123,"[1, 2, 11, 12]","[\'a man\', \'the man\']"\n')
    (tmp_path / 'vg.csv').write_text('image_fpath,bbox,phrase\n123.jpg,"[0, 0, 5, 5]",a dog\n')
    flickr = ZSGNetDataset(data_root=str(tmp_path), ann_file='flickr.csv',
                           data_prefix=dict(img_path='imgs'), pipeline=[PackPhraseInputs()])
    sample = flickr[0]
    assert sample['inputs'].shape == (3, 20, 30)
    assert sample['data_samples'].phrase == 'a man'  # the first phrase, as eval.py
    assert sample['data_samples'].gt_bbox == [1, 2, 11, 12]
    vg = ZSGNetDataset(data_root=str(tmp_path), ann_file='vg.csv',
                       data_prefix=dict(img_path='imgs'))
    assert vg[0]['phrase'] == 'a dog'
    (tmp_path / 'bad.csv').write_text('img,box\n')
    with pytest.raises(ValueError, match='columns'):
        ZSGNetDataset(data_root=str(tmp_path), ann_file='bad.csv')
    with pytest.raises(FileNotFoundError, match='missing.csv'):
        ZSGNetDataset(data_root=str(tmp_path), ann_file='missing.csv')


def test_scene_phrases_boxes_are_tight():
    scene = generate_scene(scene_seed(0, 0))
    phrases = scene_phrases(scene)
    assert [p.phrase for p in phrases][:2] == ['the black cross', 'the black cross in the sky']
    for p in phrases:
        name = p.phrase.split(' on ')[0].split(' in ')[0][4:]
        obj = next(o for o in scene.objects if o.name == name)
        ys, xs = np.nonzero(scene.label == obj.label)
        assert p.box == (xs.min(), ys.min(), xs.max(), ys.max())


def test_toy_phrase_dataset_writes_phrases_next_to_the_split(tmp_path):
    ds = ToyPhraseDataset(generate=dict(num_images=3), data_root=str(tmp_path / 'toy'),
                          pipeline=[PackPhraseInputs()])
    written = json.loads((tmp_path / 'toy' / 'phrases_val.json').read_text())
    assert len(ds) == len(written['samples']) > 0
    sample = ds[0]
    assert sample['inputs'].shape == (3, 224, 224)
    assert sample['data_samples'].phrase.startswith('the ')
    again = ToyPhraseDataset(generate=dict(num_images=3), data_root=str(tmp_path / 'toy'))
    assert again[0]['gt_bbox'] == ds[0]['data_samples'].gt_bbox


def test_flickr30k_entities_converter(tmp_path):
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        'f30k',
        Path(__file__).resolve().parents[2] / 'tools/dataset_converters/flickr30k_entities.py')
    f30k = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(f30k)
    root = tmp_path / 'flickr30k_entities'
    (root / 'Annotations').mkdir(parents=True)
    (root / 'Sentences').mkdir()
    (root / 'test.txt').write_text('42\n')
    (root / 'Sentences' / '42.txt').write_text(
        '[/EN#1/people Two men] play with [/EN#2/animals a dog] in [/EN#3/scene the park] .\n')
    box = '<object><name>{}</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax>' \
          '<ymax>{}</ymax></bndbox></object>'
    (root / 'Annotations' / '42.xml').write_text(
        '<annotation>' + box.format(1, 0, 0, 10, 10) + box.format(1, 20, 5, 30, 40)
        + box.format(2, 3, 4, 5, 6) + '<object><name>3</name><scene>1</scene></object>'
        + '</annotation>')
    out = tmp_path / 'f30k.csv'
    assert f30k.main([str(root), str(out)]) == 0
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(tmp_path / '42.jpg')
    ds = ZSGNetDataset(data_root=str(tmp_path), ann_file='f30k.csv')
    assert [(d['phrase'], d['gt_bbox']) for d in (ds[0], ds[1])] == [
        ('Two men', [0, 0, 30, 40]), ('a dog', [3, 4, 5, 6])]  # union of two boxes; no scene
    assert len(ds) == 2
