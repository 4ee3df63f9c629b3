"""COCO OVD split files (built here from a tiny instances file), their loading, proposal files,
the novel / base AP50 of OVDCocoMetric worked by hand, and the LVIS converter."""
from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

import denseclip  # noqa: F401
from denseclip.datasets.ovd import COCO_OVD_BASE, COCO_OVD_NOVEL, OVDCocoDataset
from denseclip.evaluation.ovd_metric import OVDCocoMetric

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'tools' / 'dataset_converters'))
import coco_ovd  # noqa: E402
import lvis_ovd  # noqa: E402

ALL = list(coco_ovd.subset_names('all'))


@pytest.fixture
def coco_root(tmp_path):
    """A 3-image instances_val2017.json: person + cat, person + traffic light, traffic light."""
    names = list(COCO_OVD_BASE[:9]) + ['traffic light'] + [n for n in ALL
                                                           if n not in COCO_OVD_BASE[:9]]
    cats = [dict(id=i + 1, name=n, supercategory='x') for i, n in enumerate(names)]
    cid = {n: i + 1 for i, n in enumerate(names)}
    images = [dict(id=i, file_name=f'{i:012d}.jpg', width=100, height=100) for i in (1, 2, 3)]

    def ann(i, img, name, box):
        return dict(id=i, image_id=img, category_id=cid[name], bbox=box, area=box[2] * box[3],
                    iscrowd=0, segmentation=[])

    anns = [ann(1, 1, 'person', [10, 10, 30, 30]), ann(2, 1, 'cat', [50, 50, 30, 30]),
            ann(3, 2, 'person', [0, 0, 20, 20]), ann(4, 2, 'traffic light', [60, 60, 10, 10]),
            ann(5, 3, 'traffic light', [5, 5, 10, 10])]
    root = tmp_path / 'coco'
    (root / 'annotations').mkdir(parents=True)
    (root / 'annotations' / 'instances_val2017.json').write_text(json.dumps(
        dict(images=images, annotations=anns, categories=cats)))
    return root


def test_split_files(coco_root):
    assert coco_ovd.main([str(coco_root), '--splits', 'val2017']) == 0
    ann = coco_root / 'annotations'
    all_, b, t = (json.loads((ann / f'ovd_ins_val2017_{s}.json').read_text())
                  for s in ('all', 'b', 't'))
    assert len(all_['categories']) == 65 and len(b['categories']) == 48
    assert len(t['categories']) == 17
    assert 'traffic light' not in [c['name'] for c in all_['categories']]
    assert sorted(im['id'] for im in all_['images']) == [1, 2]  # image 3: no split class
    assert sorted(a['id'] for a in all_['annotations']) == [1, 2, 3]
    assert sorted(a['id'] for a in b['annotations']) == [1, 3]
    assert [a['id'] for a in t['annotations']] == [2]
    assert [im['id'] for im in t['images']] == [1]
    bad = coco_root / 'bad'
    (bad / 'annotations').mkdir(parents=True)
    (bad / 'annotations' / 'instances_val2017.json').write_text(json.dumps(
        dict(images=[], annotations=[], categories=[dict(id=1, name='person')])))
    assert coco_ovd.main([str(bad), '--splits', 'val2017']) == 1  # classes missing
    assert coco_ovd.main([str(coco_root / 'nowhere')]) == 1


def _classes(path):
    return [c['name'] for c in json.loads(Path(path).read_text())['categories']]


def test_split_files_load_and_proposal_file_errors(coco_root):
    coco_ovd.convert(coco_root, ['val2017'])
    ann = coco_root / 'annotations' / 'ovd_ins_val2017_b.json'
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = OVDCocoDataset(ann_file=str(ann), metainfo=dict(classes=_classes(ann)),
                            data_prefix=dict(img='val2017/'), pipeline=[])
        assert len(ds) == 2 and [x['bbox_label'] for x in ds.get_data_info(0)['instances']] \
            == [0]
        props = coco_root / 'props.pkl'
        good = {f'val2017/{i:012d}.jpg': dict(bboxes=np.zeros((3, 4), np.float32),
                                              scores=np.ones(3, np.float32)) for i in (1, 2)}
        props.write_bytes(pickle.dumps(good))
        ds = OVDCocoDataset(ann_file=str(ann), metainfo=dict(classes=_classes(ann)),
                            data_prefix=dict(img='val2017/'), pipeline=[],
                            proposal_file=str(props))
        assert ds.get_data_info(1)['proposals']['bboxes'].shape == (3, 4)
        props.write_bytes(pickle.dumps({'val2017/000000000001.jpg': good['val2017/'
                                                                          '000000000001.jpg']}))
        with pytest.raises(ValueError, match='does not match the dataset.*000000000002'):
            OVDCocoDataset(ann_file=str(ann), metainfo=dict(classes=_classes(ann)),
                           data_prefix=dict(img='val2017/'), pipeline=[],
                           proposal_file=str(props))
        with pytest.raises(FileNotFoundError, match='proposal_file'):
            OVDCocoDataset(ann_file=str(ann), metainfo=dict(classes=_classes(ann)),
                           data_prefix=dict(img='val2017/'), pipeline=[],
                           proposal_file=str(coco_root / 'missing.pkl'))
        with pytest.raises(ValueError, match="'cat'.*not categories"):
            OVDCocoDataset(ann_file=str(ann), metainfo=dict(classes=['person', 'cat']),
                           pipeline=[])


def test_novel_and_base_ap50_by_hand(coco_root):
    coco_ovd.convert(coco_root, ['val2017'])
    ann = coco_root / 'annotations' / 'ovd_ins_val2017_all.json'
    classes = _classes(ann)
    metric = OVDCocoMetric(ann_file=str(ann), metric='bbox', novel_classes=COCO_OVD_NOVEL,
                           base_classes=COCO_OVD_BASE)
    metric.dataset_meta = dict(classes=classes)
    k = classes.index

    def sample(img, boxes, scores, labels):
        return dict(img_id=img, ori_shape=(100, 100), pred_instances=dict(
            bboxes=torch.tensor(boxes, dtype=torch.float32), scores=torch.tensor(scores),
            labels=torch.tensor(labels)))

    # image 1: person and cat found exactly; image 2: a higher-scored person box in the wrong
    # place (FP), its person missed, and a dog where there is none (dog has no ground truth)
    metric.process({}, [sample(1, [[10, 10, 40, 40], [50, 50, 80, 80]], [0.9, 0.8],
                               [k('person'), k('cat')]),
                        sample(2, [[70, 0, 90, 20], [60, 60, 70, 70]], [0.95, 0.5],
                               [k('person'), k('dog')])])
    res = metric.evaluate(2)
    # person: FP (0.95) then TP (0.9) of 2 GTs -> precision 0.5 up to recall 0.5, COCO's
    # 101-point interpolation: 0.5 * 51 / 101; the other base classes have no ground truth
    assert res['coco/bbox_base_AP50'] == pytest.approx(0.5 * 51 / 101, abs=1e-6)
    assert res['coco/bbox_novel_AP50'] == pytest.approx(1.0)  # cat; dog has no GT
    assert 'coco/bbox_mAP_50' in res
    with pytest.raises(ValueError, match='novel_classes is empty'):
        OVDCocoMetric(ann_file=str(ann), novel_classes=[])
    bad = OVDCocoMetric(ann_file=str(ann), novel_classes=['unicorn'])
    bad.dataset_meta = dict(classes=classes)
    bad.process({}, [sample(1, [[10, 10, 40, 40]], [0.9], [k('person')])])
    with pytest.raises(ValueError, match='unicorn'):
        bad.evaluate(1)


def test_lvis_converter(tmp_path):
    cats = [dict(id=1, name='aerosol_can', synonyms=['aerosol_can', 'spray_can'],
                 frequency='c'),
            dict(id=2, name='bob', synonyms=['bob, fishing'], frequency='r'),
            dict(id=3, name='apple', synonyms=['apple'], frequency='f')]
    anns = [dict(id=i, image_id=1, category_id=c, bbox=[0, 0, 1, 1]) for i, c in
            enumerate([1, 2, 3, 2], 1)]
    root = tmp_path / 'lvis'
    (root / 'annotations').mkdir(parents=True)
    for split in ('train', 'val'):
        (root / 'annotations' / f'lvis_v1_{split}.json').write_text(json.dumps(
            dict(images=[dict(id=1)], annotations=anns, categories=cats)))
    assert lvis_ovd.main([str(root)]) == 0
    norare = json.loads((root / 'annotations' / 'lvis_v1_train_norare.json').read_text())
    assert [a['category_id'] for a in norare['annotations']] == [1, 3]
    assert len(norare['categories']) == 3
    names = (root / 'annotations' / 'lvis_v1_ovd_names.txt').read_text().splitlines()
    assert names == ['aerosol can, spray can', 'bob, bob fishing', 'apple']
    assert lvis_ovd.main([str(tmp_path / 'none')]) == 1
