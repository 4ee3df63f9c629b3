"""SA-1B reading (json + RLE through pycocotools), the other mask sources of the pipeline and
PackMaskInputs, against hand-made masks."""
from __future__ import annotations

import json

import mmcv
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.registry import init_default_scope
from pycocotools import mask as mask_utils

from denseclip.datasets.sa1b import (GenerateMasks, LoadSA1BMasks, PackMaskInputs, SA1BDataset,
                                     SegMapToMasks, decode_sa1b_masks)


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')  # the pipeline's transforms are registered there


def hand_masks(h: int = 12, w: int = 16) -> np.ndarray:
    a = np.zeros((h, w), np.uint8)
    a[2:5, 3:7] = 1  # 12 px
    b = np.zeros((h, w), np.uint8)
    b[:, :8] = 1  # 96 px, overlaps a (SA-1B masks overlap)
    c = np.zeros((h, w), np.uint8)
    c[10:, 14:] = 1  # 4 px
    return np.stack([a, b, c])


def sa1b_json(masks: np.ndarray) -> dict:
    anns = []
    for i, m in enumerate(masks):
        rle = mask_utils.encode(np.asfortranarray(m))
        anns.append(dict(id=i, area=int(m.sum()), bbox=[0, 0, 1, 1], predicted_iou=0.9,
                         segmentation=dict(size=rle['size'], counts=rle['counts'].decode())))
    h, w = masks.shape[1:]
    return dict(image=dict(image_id=1, width=w, height=h, file_name='sa_1.jpg'),
                annotations=anns)


def test_decode_rle_sorted_by_area_and_capped():
    masks = hand_masks()
    out = decode_sa1b_masks(sa1b_json(masks))
    np.testing.assert_array_equal(out, masks[[1, 0, 2]])  # 96, 12, 4 pixels
    np.testing.assert_array_equal(decode_sa1b_masks(sa1b_json(masks), max_masks=2),
                                  masks[[1, 0]])
    assert decode_sa1b_masks(dict(image=dict(height=3, width=4), annotations=[])).shape == \
        (0, 3, 4)


def test_decode_bad_input():
    with pytest.raises(KeyError, match="no 'annotations'"):
        decode_sa1b_masks({'image': {}}, source='x.json')
    with pytest.raises(KeyError, match=r'annotations\[0\] has no RLE'):
        decode_sa1b_masks({'annotations': [{'segmentation': [[0, 0, 1, 1]]}]})


@pytest.fixture
def sa1b_root(tmp_path):
    shard = tmp_path / 'images' / 'sa_000000'
    shard.mkdir(parents=True)
    rng = np.random.default_rng(0)
    masks = hand_masks()
    for name in ('sa_1', 'sa_2'):
        mmcv.imwrite(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), str(shard / f'{name}.jpg'))
        (shard / f'{name}.json').write_text(json.dumps(sa1b_json(masks)))
    return tmp_path, masks


def test_dataset_pairs_images_with_their_json(sa1b_root):
    root, _ = sa1b_root
    ds = SA1BDataset(data_root=str(root), data_prefix=dict(img_path='images'), pipeline=[])
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert info['img_path'].endswith('sa_000000/sa_1.jpg')
    assert info['ann_path'].endswith('sa_000000/sa_1.json')
    only_images = SA1BDataset(data_root=str(root), data_prefix=dict(img_path='images'),
                              ann_suffix=None, pipeline=[])
    assert 'ann_path' not in only_images.get_data_info(1)
    (root / 'images' / 'sa_000000' / 'sa_2.json').unlink()
    with pytest.raises(FileNotFoundError, match='sa_2.json'):
        SA1BDataset(data_root=str(root), data_prefix=dict(img_path='images'), pipeline=[])
    with pytest.raises(FileNotFoundError, match='does not exist'):
        SA1BDataset(data_root=str(root), data_prefix=dict(img_path='nowhere'), pipeline=[])


def test_pipeline_resizes_flips_and_packs_masks(sa1b_root):
    root, masks = sa1b_root
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadSA1BMasks'),
        dict(type='Resize', scale=(32, 24), keep_ratio=True),  # x2
        dict(type='RandomFlip', prob=1.0, direction='horizontal'),
        dict(type='PackMaskInputs'),
    ]
    ds = SA1BDataset(data_root=str(root), data_prefix=dict(img_path='images'), pipeline=pipeline)
    out = ds[0]
    got = out['data_samples'].gt_masks.numpy()
    assert out['inputs'].shape == (3, 24, 32)
    expected = masks[[1, 0, 2]].repeat(2, axis=1).repeat(2, axis=2)[:, :, ::-1]
    np.testing.assert_array_equal(got, expected)
    assert 'gt_sem_seg' not in out['data_samples']


def test_masks_follow_a_downscaled_image(tmp_path):
    masks = hand_masks(12, 16)
    ann = tmp_path / 'sa_1.json'
    ann.write_text(json.dumps(sa1b_json(masks)))
    results = dict(img=np.zeros((6, 8, 3), np.uint8), ann_path=str(ann))
    out = LoadSA1BMasks()(results)
    got = np.stack([out[k] for k in out['mask_fields']])
    np.testing.assert_array_equal(got, masks[[1, 0, 2]][:, ::2, ::2])  # nearest, halved
    with pytest.raises(KeyError, match='no ann_path'):
        LoadSA1BMasks()(dict(img=np.zeros((6, 8, 3), np.uint8)))


def test_segmap_to_masks_connected_components_without_labels():
    labels = np.full((8, 8), 3, np.uint8)
    labels[1:3, 1:3] = 5  # two separate regions of class 5: two masks
    labels[5:7, 5:8] = 5
    labels[0, 7] = 255
    out = Compose([SegMapToMasks(min_area=1), PackMaskInputs()])(
        dict(img=np.zeros((8, 8, 3), np.uint8), gt_seg_map=labels, seg_fields=['gt_seg_map']))
    masks = out['data_samples'].gt_masks.numpy().astype(bool)
    assert len(masks) == 3 and 'gt_sem_seg' not in out['data_samples']
    np.testing.assert_array_equal(masks[0], (labels == 3))  # largest first
    assert {int(m.sum()) for m in masks[1:]} == {4, 6}
    assert not masks.any(0)[0, 7]  # 255 is no region


def test_generate_masks_from_a_region_map():
    gen = GenerateMasks(generator=dict(type='SuperpixelMaskGenerator', cache_dir=False))
    img = np.zeros((40, 40, 3), np.uint8)
    img[:, 20:] = 255
    out = gen(dict(img=img))
    masks = np.stack([out[k] for k in out['mask_fields']])
    np.testing.assert_array_equal(masks.sum(0), np.ones((40, 40)))  # superpixels cover all
    assert len(masks) >= 2


def test_pack_without_masks_is_an_error():
    with pytest.raises(KeyError, match='no masks'):
        PackMaskInputs()(dict(img=np.zeros((4, 4, 3), np.uint8)))
