"""ImageNet-Segmentation (Guillaumin et al., IJCV 2014; 4,276 ImageNet validation images with
binary foreground masks), as read by TextSpan (clip_text_span
utils/imagenet_segmentation.py@49f70f3) and Chefer et al. before it.

The data is one MATLAB v7.3 file, ``gtsegs_ijcv.mat``, an HDF5 file read with ``h5py``:
``/value/img`` holds (N, 1) object references to (3, W, H) uint8 images, ``/value/gt``
(N, 1) references to (1, 1) reference arrays whose element is the (W, H) 0/1 mask; both are
transposed on reading (MATLAB is column-major)::

    test_dataloader = dict(dataset=dict(type='ImageNetSegDataset',
        data_root='data/imagenet_seg', ann_file='gtsegs_ijcv.mat',
        pipeline=[dict(type='LoadImageNetSegSample', image_size=224, gt_resize='squash'),
                  dict(type='PackSegInputs')]))

:class:`ToyForegroundDataset` writes single-object toy scenes (``denseclip/toy/world.py``) in
the same layout, so the toy runs the very same loader and metric.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from ..registry import DATASETS, TRANSFORMS
from ..toy.world import THINGS, generate_scene, scene_seed

GtResize = Literal['squash', 'center_crop']
GT_RESIZE_MODES = ('squash', 'center_crop')


def _h5py():
    try:
        import h5py
    except ImportError as err:  # listed in setup.py; a clear message for a bare environment
        raise ImportError('ImageNet-Segmentation reads gtsegs_ijcv.mat (MATLAB v7.3, HDF5) '
                          'with h5py: pip install h5py') from err
    return h5py


def write_gtsegs_mat(path: str | os.PathLike, images: Sequence[np.ndarray],
                     masks: Sequence[np.ndarray]) -> None:
    """Write images and masks in the layout of ``gtsegs_ijcv.mat`` (see the module docstring).

    Args:
        path: the file to write.
        images: (H, W, 3) uint8 RGB images.
        masks: (H, W) 0/1 masks, one per image.
    """
    if len(images) != len(masks):
        raise ValueError(f'write_gtsegs_mat: {len(images)} images but {len(masks)} masks')
    h5py = _h5py()
    ref = h5py.special_dtype(ref=h5py.Reference)
    with h5py.File(path, 'w') as f:
        refs = f.create_group('#refs#')
        img_refs = np.empty((len(images), 1), dtype=object)
        gt_refs = np.empty((len(images), 1), dtype=object)
        for i, (image, mask) in enumerate(zip(images, masks)):
            if image.ndim != 3 or image.shape[2] != 3 or mask.shape != image.shape[:2]:
                raise ValueError(f'write_gtsegs_mat: image {i} {image.shape} and mask '
                                 f'{mask.shape}; expected (H, W, 3) and (H, W)')
            img = refs.create_dataset(f'img{i}', data=np.ascontiguousarray(
                image.transpose(2, 1, 0)).astype(np.uint8))  # (3, W, H)
            gt = refs.create_dataset(f'gt{i}', data=np.ascontiguousarray(mask.T).astype(
                np.uint8))  # (W, H)
            cell = refs.create_dataset(f'gtcell{i}', (1, 1), dtype=ref)
            cell[0, 0] = gt.ref
            img_refs[i, 0], gt_refs[i, 0] = img.ref, cell.ref
        value = f.create_group('value')
        value.create_dataset('img', data=img_refs, dtype=ref)
        value.create_dataset('gt', data=gt_refs, dtype=ref)


def count_gtsegs(path: str | os.PathLike) -> int:
    """The number of images in a ``gtsegs_ijcv.mat`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path} does not exist; ImageNet-Segmentation is one file, '
                                'gtsegs_ijcv.mat (from Guillaumin et al. or the TextSpan README)')
    with _h5py().File(path, 'r') as f:
        if 'value/img' not in f or 'value/gt' not in f:
            raise ValueError(f'{path}: not an ImageNet-Segmentation file (no /value/img and '
                             f'/value/gt; found {list(f.keys())})')
        if len(f['value/img']) != len(f['value/gt']):
            raise ValueError(f"{path}: {len(f['value/img'])} images but "
                             f"{len(f['value/gt'])} masks")
        return len(f['value/img'])


def read_gtsegs(file, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Image (H, W, 3) uint8 RGB and mask (H, W) uint8 ``index`` of an open h5py file, as
    ``ImagenetSegmentation.__getitem__``@49f70f3 reads them."""
    image = np.array(file[file['value/img'][index, 0]]).transpose((2, 1, 0))  # (H, W, 3)
    mask = np.array(file[file[file['value/gt'][index, 0]][0, 0]]).transpose((1, 0))  # (H, W)
    return image, mask


@TRANSFORMS.register_module()
class LoadImageNetSegSample(BaseTransform):
    """Read one sample of the .mat and resize it as TextSpan's evaluation does.

    The image goes through open_clip's eval transform: shorter side to ``image_size``
    (bicubic), centre crop. ``gt_resize='squash'`` resizes the mask to ``image_size`` x
    ``image_size`` ignoring its aspect ratio (nearest), as released
    (compute_segmentations.py ``target_transform``@49f70f3): on a non-square image mask and
    image are then misaligned. ``'center_crop'`` resizes and crops the mask like the image.

    Adds ``img`` (BGR, mmseg's convention), ``gt_seg_map``, ``seg_fields``, ``img_shape``,
    ``ori_shape`` (both the resized size: metrics are computed there, as released).
    """

    def __init__(self, image_size: int = 224, gt_resize: GtResize = 'squash') -> None:
        if gt_resize not in GT_RESIZE_MODES:
            raise ValueError(f'LoadImageNetSegSample: gt_resize={gt_resize!r}; expected one of '
                             f'{GT_RESIZE_MODES}')
        if image_size < 1:
            raise ValueError(f'LoadImageNetSegSample: image_size={image_size}; expected >= 1')
        self.image_size = image_size
        self.gt_resize = gt_resize
        self._files: dict[str, object] = {}

    def _file(self, path: str):
        if path not in self._files:  # opened lazily, once per worker process
            self._files[path] = _h5py().File(path, 'r')
        return self._files[path]

    def resize(self, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (S, S, 3) RGB image and (S, S) mask, S = ``image_size``."""
        size = self.image_size
        img = TF.resize(Image.fromarray(image).convert('RGB'), size,
                        interpolation=InterpolationMode.BICUBIC)
        img = TF.center_crop(img, size)
        gt = Image.fromarray(mask)
        if self.gt_resize == 'squash':
            gt = TF.resize(gt, [size, size], interpolation=InterpolationMode.NEAREST)
        else:
            gt = TF.center_crop(TF.resize(gt, size, interpolation=InterpolationMode.NEAREST),
                                size)
        return np.asarray(img), np.asarray(gt)

    def transform(self, results: dict) -> dict:
        image, mask = read_gtsegs(self._file(results['mat_path']), results['index'])
        image, mask = self.resize(image, mask)
        results['img'] = np.ascontiguousarray(image[..., ::-1])  # RGB -> BGR
        results['gt_seg_map'] = mask.astype(np.uint8)
        results['seg_fields'] = ['gt_seg_map']
        results['img_shape'] = results['ori_shape'] = image.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(image_size={self.image_size}, '
                f'gt_resize={self.gt_resize!r})')


@DATASETS.register_module()
class ImageNetSegDataset(BaseDataset):
    """ImageNet-Segmentation from ``gtsegs_ijcv.mat``: background (0) and foreground (1).

    Args:
        ann_file: the .mat file (joined to ``data_root``).
        **kwargs: mmengine ``BaseDataset``'s (``data_root``, ``pipeline``, ``indices``, ...).
    """
    METAINFO = dict(classes=('background', 'foreground'), palette=[[0, 0, 0], [255, 255, 255]])

    def __init__(self, ann_file: str = 'gtsegs_ijcv.mat', **kwargs) -> None:
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> list[dict]:
        path = str(self.ann_file)
        return [dict(mat_path=path, index=i, img_path=f'{path}:{i:05d}',
                     seg_map_path=f'{path}:{i:05d}', reduce_zero_label=False)
                for i in range(count_gtsegs(path))]


@DATASETS.register_module()
class ToyForegroundDataset(ImageNetSegDataset):
    """Single-object toy scenes as an ImageNet-Segmentation file: foreground = the thing.

    Scene ``i`` is ``generate_scene(scene_seed(seed, i), size, num_objects=1)``
    (``denseclip/toy/world.py``): one thing on textured stuff; its mask is 1 on the thing's
    pixels. The file is written once to ``data_root/ann_file`` (atomically: written aside,
    then renamed) unless it exists; its name should name the arguments.

    Args:
        generate: ``dict(num_images=..., seed=0, size=224)``.
        **kwargs: :class:`ImageNetSegDataset`'s.
    """

    def __init__(self, generate: dict, data_root: str = 'data/toy_fg',
                 ann_file: str = 'toy_fg.mat', **kwargs) -> None:
        path = Path(data_root, ann_file)
        if not path.exists():
            write_toy_foreground(path, **generate)
        super().__init__(ann_file=ann_file, data_root=data_root, **kwargs)


def write_toy_foreground(path: str | os.PathLike, num_images: int, seed: int = 0,
                         size: int = 224) -> None:
    """Write :class:`ToyForegroundDataset`'s file (see there)."""
    if num_images < 1:
        raise ValueError(f'write_toy_foreground: num_images={num_images}; expected >= 1')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images, masks = [], []
    for i in range(num_images):
        scene = generate_scene(scene_seed(seed, i), size, num_objects=1)
        images.append(scene.image)
        masks.append((scene.label < len(THINGS)).astype(np.uint8))
    from denseclip.engine.checkpoint import atomic_write  # the engine imports the datasets

    atomic_write(path, lambda tmp: write_gtsegs_mat(tmp, images, masks))
