"""Toy-world instances: masks, boxes and areas by hand, determinism, atomic regeneration, the
base/novel split as an mmdet dataset and its class-list errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from mmengine.registry import DefaultScope
from pycocotools import mask as mask_utils

import denseclip  # noqa: F401
from denseclip.datasets.ovd import OVDCocoDataset
from denseclip.datasets.toy_det import ToyDetDataset
from denseclip.toy.instances import (INSTANCES_VERSION, TOY_DET_BASE_CLASSES,
                                     TOY_DET_CLASSES, TOY_DET_NOVEL_CLASSES,
                                     ensure_toy_instances, instance_masks, scene_instances)
from denseclip.toy.world import (THINGS, TOY_UNSEEN_CLASSES, generate_scene, scene_seed)


def test_split_follows_the_segmentation_split():
    assert TOY_DET_CLASSES == THINGS
    assert set(TOY_DET_NOVEL_CLASSES) == set(TOY_UNSEEN_CLASSES) & set(THINGS)
    assert set(TOY_DET_BASE_CLASSES) | set(TOY_DET_NOVEL_CLASSES) == set(THINGS)
    assert not set(TOY_DET_BASE_CLASSES) & set(TOY_DET_NOVEL_CLASSES)


@pytest.mark.parametrize('seed', [3, 11, 42])
def test_instances_by_hand(seed):
    scene = generate_scene(scene_seed(0, seed), 224, num_objects=5)
    masks = instance_masks(scene)
    anns = scene_instances(scene)
    # every thing pixel of the label map belongs to exactly one instance of its class
    assert not (masks.sum(0) > 1).any()
    for k in range(len(THINGS)):
        union = np.zeros(scene.label.shape, bool)
        for obj, m in zip(scene.objects, masks):
            if obj.label == k:
                union |= m
        np.testing.assert_array_equal(union, scene.label == k)
    visible = [(o, m) for o, m in zip(scene.objects, masks) if o.area]
    assert len(anns) == len(visible)
    for ann, (obj, m) in zip(anns, visible):
        ys, xs = np.nonzero(m)
        # COCO [x, y, w, h] of the tight box, pixel-inclusive extents
        assert ann['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                               ys.max() - ys.min() + 1]
        assert ann['area'] == m.sum() == obj.area
        assert ann['category_id'] == THINGS.index(obj.name) + 1
        rle = dict(ann['segmentation'], counts=ann['segmentation']['counts'].encode())
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), m)


def test_generation_is_deterministic_atomic_and_regenerated_when_stale(tmp_path):
    a = ensure_toy_instances(tmp_path / 'a', num_images=6, seed=5)
    b = ensure_toy_instances(tmp_path / 'b', num_images=6, seed=5)
    assert a.read_text() == b.read_text()
    data = json.loads(a.read_text())
    assert [c['name'] for c in data['categories']] == list(TOY_DET_CLASSES)
    assert [im['file_name'] for im in data['images']] == [f'{i:05d}.png' for i in range(6)]
    assert (tmp_path / 'a' / 'img_dir' / 'val' / '00005.png').is_file()
    assert len({a_['id'] for a_ in data['annotations']}) == len(data['annotations']) > 0
    mtime = a.stat().st_mtime_ns
    ensure_toy_instances(tmp_path / 'a', num_images=6, seed=5)  # current: a no-op
    assert a.stat().st_mtime_ns == mtime
    data['info']['instances_version'] = INSTANCES_VERSION - 1
    a.write_text(json.dumps(data))
    ensure_toy_instances(tmp_path / 'a', num_images=6, seed=5)  # stale: rewritten
    assert json.loads(a.read_text())['info']['instances_version'] == INSTANCES_VERSION
    assert not list((tmp_path / 'a' / 'annotations').glob('.*tmp'))


def _dataset(root, classes, cls=ToyDetDataset, **kw):
    with DefaultScope.overwrite_default_scope('mmdet'):
        return cls(generate=dict(num_images=12, seed=2), data_root=str(root),
                   metainfo=dict(classes=classes), pipeline=[], **kw)


def test_base_training_split_has_only_base_labels(tmp_path):
    full = _dataset(tmp_path, TOY_DET_CLASSES)
    base = _dataset(tmp_path, TOY_DET_BASE_CLASSES)
    novel_ids = {TOY_DET_CLASSES.index(c) for c in TOY_DET_NOVEL_CLASSES}
    n_full = [len(full.get_data_info(i)['instances']) for i in range(len(full))]
    n_novel = [sum(x['bbox_label'] in novel_ids for x in full.get_data_info(i)['instances'])
               for i in range(len(full))]
    assert sum(n_novel) > 0
    for i in range(len(base)):
        labels = [x['bbox_label'] for x in base.get_data_info(i)['instances']]
        assert all(0 <= k < len(TOY_DET_BASE_CLASSES) for k in labels)
        assert len(labels) == n_full[i] - n_novel[i]  # novel things unlabelled, not renamed


def test_class_list_errors(tmp_path):
    with pytest.raises(ValueError, match=r"\['blue hexagon'\].*not categories"):
        _dataset(tmp_path, ('red circle', 'blue hexagon'))
    with pytest.raises(ValueError, match="category order"):
        _dataset(tmp_path, ('yellow triangle', 'red circle'))
    with pytest.raises(ValueError, match='empty class list'):
        _dataset(tmp_path, ())
    with pytest.raises(FileNotFoundError, match='annotation file'):
        with DefaultScope.overwrite_default_scope('mmdet'):
            OVDCocoDataset(ann_file=str(tmp_path / 'nope.json'), pipeline=[])


def test_scenes_with_novel_things_can_be_left_out(tmp_path):
    base_only = _dataset(tmp_path, TOY_DET_BASE_CLASSES, exclude_scenes_with=TOY_DET_NOVEL_CLASSES)
    full = _dataset(tmp_path, TOY_DET_CLASSES)
    novel_ids = {TOY_DET_CLASSES.index(c) for c in TOY_DET_NOVEL_CLASSES}
    clean = [full.get_data_info(i)['img_id'] for i in range(len(full))
             if not any(x['bbox_label'] in novel_ids
                        for x in full.get_data_info(i)['instances'])]
    assert 0 < len(clean) < len(full)
    assert [base_only.get_data_info(i)['img_id'] for i in range(len(base_only))] == clean
    with pytest.raises(ValueError, match='not toy things'):
        _dataset(tmp_path, TOY_DET_BASE_CLASSES, exclude_scenes_with=('unicorn',))
