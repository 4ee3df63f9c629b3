"""ImageNet-Segmentation: a tiny .mat in the released layout reads back as the released loader
reads it (utils/imagenet_segmentation.py@49f70f3); the image follows open_clip's eval
transform; the GT-resize switch by hand; the toy file; bad input."""
import h5py
import numpy as np
import open_clip
import pytest
from PIL import Image

from denseclip.datasets.imagenet_seg import (ImageNetSegDataset, LoadImageNetSegSample,
                                             ToyForegroundDataset, write_gtsegs_mat)
from denseclip.toy.world import THINGS, generate_scene, scene_seed


@pytest.fixture
def mat(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (20, 40, 3), dtype=np.uint8),
              rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)]
    wide = np.zeros((20, 40), np.uint8)
    wide[:, :10] = 1  # the left quarter
    masks = [wide, (rng.random((30, 30)) > 0.5).astype(np.uint8)]
    path = tmp_path / 'gtsegs_ijcv.mat'
    write_gtsegs_mat(path, images, masks)
    return path, images, masks


def test_reads_back_as_the_released_loader(mat):
    path, images, masks = mat
    f = h5py.File(path, 'r')
    assert len(f['/value/img']) == 2
    for i in range(2):  # ImagenetSegmentation.__getitem__, transcribed
        img = np.array(f[f['/value/img'][i, 0]]).transpose((2, 1, 0))
        target = np.array(f[f[f['/value/gt'][i, 0]][0, 0]]).transpose((1, 0))
        assert np.array_equal(img, images[i]) and np.array_equal(target, masks[i])


def test_pipeline_resizes_as_open_clip_and_switches_the_gt_resize(mat):
    path, images, _ = mat
    dataset = ImageNetSegDataset(ann_file=str(path), pipeline=[])
    assert len(dataset) == 2
    info = dataset[0]
    squash = LoadImageNetSegSample(image_size=8, gt_resize='squash').transform(dict(info))
    crop = LoadImageNetSegSample(image_size=8, gt_resize='center_crop').transform(dict(info))
    # open_clip's eval transform (short side, bicubic, centre crop) without normalisation
    ref = open_clip.transform.image_transform(8, is_train=False, mean=(0, 0, 0), std=(1, 1, 1))
    expected = (ref(Image.fromarray(images[0])) * 255).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(squash['img'][..., ::-1], expected)  # BGR
    assert squash['img_shape'] == squash['ori_shape'] == (8, 8)
    # released squash: 40 -> 8 columns, the left quarter is columns 0-1
    assert squash['gt_seg_map'].sum(0).tolist() == [8, 8, 0, 0, 0, 0, 0, 0]
    # aligned: 20x40 -> 8x16, the quarter is columns 0-3, the crop keeps columns 4-11
    assert crop['gt_seg_map'].sum() == 0
    assert np.array_equal(crop['img'], squash['img'])


def test_toy_foreground_file(tmp_path):
    dataset = ToyForegroundDataset(generate=dict(num_images=2, seed=3, size=64),
                                   data_root=str(tmp_path / 'toy'), ann_file='fg.mat',
                                   pipeline=[LoadImageNetSegSample(image_size=64)])
    for i in range(2):
        scene = generate_scene(scene_seed(3, i), 64, num_objects=1)
        out = dataset[i]
        assert np.array_equal(out['gt_seg_map'], scene.label < len(THINGS))
        assert np.array_equal(out['img'][..., ::-1], scene.image)
        assert 0 < out['gt_seg_map'].sum() < 64 * 64


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="gt_resize='crop'.*'squash', 'center_crop'"):
        LoadImageNetSegSample(gt_resize='crop')
    with pytest.raises(FileNotFoundError, match='nothere.mat does not exist'):
        ImageNetSegDataset(ann_file=str(tmp_path / 'nothere.mat'))
    other = tmp_path / 'other.mat'
    with h5py.File(other, 'w') as f:
        f.create_dataset('x', data=np.zeros(2))
    with pytest.raises(ValueError, match=r"not an ImageNet-Segmentation file.*\['x'\]"):
        ImageNetSegDataset(ann_file=str(other))
    with pytest.raises(ValueError, match='1 images but 2 masks'):
        write_gtsegs_mat(tmp_path / 'x.mat', [np.zeros((2, 2, 3), np.uint8)],
                         [np.zeros((2, 2))] * 2)
    with pytest.raises(ValueError, match='num_images=0'):
        ToyForegroundDataset(generate=dict(num_images=0), data_root=str(tmp_path / 't'))
