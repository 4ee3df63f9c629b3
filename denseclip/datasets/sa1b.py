"""Class-agnostic masks for PixelCLIP: SA-1B, a mask generator on any image folder, or the toy
world's own segments; no semantic label ever reaches the model.

PixelCLIP (Shin et al., NeurIPS 2024; cvlab-kaist/PixelCLIP@42f5c9c
``data/dataset_mappers/sa1b_dataset_mapper.py``, reference notes §4.1) trains on SA-1B images
with their masks. Here the masks travel through the ordinary mmseg pipeline:

    SA1BDataset (images; SA-1B's per-image json next to each, or none: any image folder)
      -> LoadImageFromFile -> LoadSA1BMasks | GenerateMasks (SAM, superpixels) | SegMapToMasks
      -> RandomResize / RandomCrop / RandomFlip / PhotoMetricDistortion   (mmseg, unchanged)
      -> PackMaskInputs: data_sample.gt_masks (N, H, W) uint8

Each mask is its own 2-D ``seg_fields`` entry (``gt_mask_0000``, ...), so mmseg's geometric
transforms resize (nearest), crop and flip it like a label map. (A single (H, W, N) field would
not do: OpenCV's resize takes at most 4 channels per call.) Masks are sorted by area, largest
first, as released, and at most ``max_masks`` are kept (released ``MAX_MASKS`` 512).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmseg.datasets.transforms import PackSegInputs

from denseclip.registry import DATASETS, MODELS, TRANSFORMS

__all__ = ['SA1BDataset', 'LoadSA1BMasks', 'GenerateMasks', 'SegMapToMasks', 'PackMaskInputs',
           'decode_sa1b_masks', 'MASK_PREFIX']

MASK_PREFIX = 'gt_mask_'
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def decode_sa1b_masks(annotation: dict, max_masks: int | None = 512,
                      source: str = 'annotation') -> np.ndarray:
    """Binary masks of one SA-1B annotation file, largest first.

    Args:
        annotation: the parsed json: ``{'image': {...}, 'annotations': [{'segmentation':
            {'size': [h, w], 'counts': str}, ...}, ...]}`` (SA-1B's per-image layout).
        max_masks: keep at most this many (the largest); None keeps all.
        source: the file, named in errors.

    Returns:
        (N, h, w) uint8 in {0, 1}.
    """
    from pycocotools import mask as mask_utils

    if not isinstance(annotation, dict) or 'annotations' not in annotation:
        raise KeyError(f"{source}: no 'annotations' list (not an SA-1B annotation file)")
    rles = []
    for i, ann in enumerate(annotation['annotations']):
        seg = ann.get('segmentation') if isinstance(ann, dict) else None
        if not (isinstance(seg, dict) and 'size' in seg and 'counts' in seg):
            raise KeyError(f"{source}: annotations[{i}] has no RLE 'segmentation' with 'size' "
                           "and 'counts'")
        rle = dict(size=list(seg['size']), counts=seg['counts'])
        if isinstance(rle['counts'], str):
            rle['counts'] = rle['counts'].encode()
        rles.append(rle)
    if not rles:
        size = annotation.get('image', {})
        return np.zeros((0, size.get('height', 0), size.get('width', 0)), np.uint8)
    sizes = {tuple(r['size']) for r in rles}
    if len(sizes) > 1:
        raise ValueError(f'{source}: masks of different sizes {sorted(sizes)}')
    masks = np.ascontiguousarray(mask_utils.decode(rles).transpose(2, 0, 1))  # (N, h, w)
    order = np.argsort(-masks.reshape(len(masks), -1).sum(1), kind='stable')
    if max_masks is not None:
        order = order[:max_masks]
    return masks[order]


def _set_masks(results: dict, masks: np.ndarray) -> dict:
    """Store (N, H, W) masks as N seg fields (see the module docstring)."""
    fields = results.setdefault('seg_fields', [])
    for i, mask in enumerate(masks):
        key = f'{MASK_PREFIX}{i:04d}'
        results[key] = np.ascontiguousarray(mask, dtype=np.uint8)
        fields.append(key)
    results['mask_fields'] = [f'{MASK_PREFIX}{i:04d}' for i in range(len(masks))]
    return results


@DATASETS.register_module()
class SA1BDataset(BaseDataset):
    """SA-1B images with their per-image mask files, or any folder of images.

    SA-1B's shards unpack to ``sa_<id>.jpg`` and ``sa_<id>.json`` side by side; PixelCLIP used
    5% of them (``datasets/sa1b.txt``), downscaled by 2 (``prepare_sa1b.py``): masks whose
    size differs from the image are resized to it (nearest) by :class:`LoadSA1BMasks`.

    Args:
        data_root: the dataset root.
        data_prefix: ``img_path`` (images, searched recursively) and ``ann_path`` (annotation
            files, the same relative path and stem; default: next to the images).
        ann_suffix: the annotation file suffix; None: images only (masks come from a
            generator, :class:`GenerateMasks`, or from the model, DINO k-means).
        **kwargs: :class:`mmengine.dataset.BaseDataset`'s (``pipeline``, ``indices``...).
    """

    METAINFO = dict(classes=())

    def __init__(self, data_root: str = '', data_prefix: dict | None = None,
                 ann_suffix: str | None = '.json', **kwargs) -> None:
        self.ann_suffix = ann_suffix
        super().__init__(data_root=data_root, data_prefix=data_prefix or dict(img_path=''),
                         **kwargs)

    def load_data_list(self) -> list[dict]:
        img_dir = Path(self.data_prefix.get('img_path', self.data_root))
        ann_dir = Path(self.data_prefix.get('ann_path') or img_dir)
        if not img_dir.is_dir():
            raise FileNotFoundError(f'SA1BDataset: image folder {img_dir} does not exist '
                                    '(data_root + data_prefix.img_path)')
        images = sorted(p for p in img_dir.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise FileNotFoundError(f'SA1BDataset: no images ({", ".join(IMAGE_SUFFIXES)}) '
                                    f'under {img_dir}')
        data_list = []
        for path in images:
            info = dict(img_path=str(path), seg_fields=[])
            if self.ann_suffix is not None:
                ann = (ann_dir / path.relative_to(img_dir)).with_suffix(self.ann_suffix)
                if not ann.is_file():
                    raise FileNotFoundError(f'SA1BDataset: {path} has no annotation file '
                                            f'{ann}; pass ann_suffix=None for images only')
                info['ann_path'] = str(ann)
            data_list.append(info)
        return data_list


@TRANSFORMS.register_module()
class LoadSA1BMasks(BaseTransform):
    """Decode an SA-1B annotation file (``results['ann_path']``) into mask seg fields.

    Args:
        max_masks: keep the largest ``max_masks`` (released ``MAX_MASKS`` 512).
    """

    def __init__(self, max_masks: int | None = 512) -> None:
        self.max_masks = max_masks

    def transform(self, results: dict) -> dict:
        path = results.get('ann_path')
        if path is None:
            raise KeyError('LoadSA1BMasks: the sample has no ann_path (SA1BDataset with '
                           'ann_suffix=None reads images only: use GenerateMasks instead)')
        with open(path) as f:
            masks = decode_sa1b_masks(json.load(f), self.max_masks, source=path)
        shape = results['img'].shape[:2]
        if masks.shape[1:] != shape and len(masks):
            # PixelCLIP's prepare step halves the images; resize the masks to follow.
            index = torch.from_numpy(masks)[None].float()
            masks = torch.nn.functional.interpolate(index, size=shape, mode='nearest')
            masks = masks[0].to(torch.uint8).numpy()
        return _set_masks(results, masks)


@TRANSFORMS.register_module()
class GenerateMasks(BaseTransform):
    """Masks of a region-mask generator on the loaded image: segment-anything's automatic
    generator (``SAMMaskGenerator``, cached on disk per image) or superpixels; each region of
    its region map becomes one mask.

    Args:
        generator: a :class:`~denseclip.models.masks.MaskGenerator` config.
        max_masks: keep the largest ``max_masks``.
    """

    def __init__(self, generator: dict, max_masks: int | None = 512) -> None:
        self.generator_cfg = dict(generator)
        self.max_masks = max_masks
        self._generator = None  # built in the worker that first needs it

    def transform(self, results: dict) -> dict:
        if self._generator is None:
            self._generator = MODELS.build(self.generator_cfg)
        rgb = np.ascontiguousarray(results['img'][..., ::-1])  # mmcv loads BGR
        regions = self._generator(rgb)  # (H, W) int32, 0 = no region
        return _set_masks(results, masks_of_regions(regions, self.max_masks))


def masks_of_regions(regions: np.ndarray, max_masks: int | None = None) -> np.ndarray:
    """(N, H, W) uint8 masks of the nonzero ids of a region map, largest first."""
    ids, counts = np.unique(regions[regions > 0], return_counts=True)
    ids = ids[np.argsort(-counts, kind='stable')][:max_masks]
    return (regions[None] == ids[:, None, None]).astype(np.uint8)


@TRANSFORMS.register_module()
class SegMapToMasks(BaseTransform):
    """The toy world's segments as class-agnostic masks: every 4-connected component of every
    label of ``gt_seg_map`` (255 skipped) becomes one mask, and the label map itself is then
    dropped, so the model sees regions, never which class a region is.

    A toy-only stand-in for SA-1B (human/SAM-annotated class-agnostic masks: one mask per
    object, so two red circles give two masks, as SA-1B would).

    Args:
        min_area: components smaller than this many pixels are dropped.
        ignore_index: the label that is no region.
    """

    def __init__(self, min_area: int = 16, ignore_index: int = 255) -> None:
        self.min_area = min_area
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        from scipy import ndimage

        labels = results.pop('gt_seg_map', None)
        if labels is None:
            raise KeyError('SegMapToMasks: no gt_seg_map; put LoadAnnotations before it')
        results['seg_fields'] = [k for k in results.get('seg_fields', []) if k != 'gt_seg_map']
        masks = []
        for value in np.unique(labels):
            if value == self.ignore_index:
                continue
            components, count = ndimage.label(labels == value)
            for i in range(1, count + 1):
                mask = components == i
                if mask.sum() >= self.min_area:
                    masks.append(mask)
        stack = (np.stack(masks) if masks
                 else np.zeros((0, *labels.shape), bool)).astype(np.uint8)
        order = np.argsort(-stack.reshape(len(stack), -1).sum(1), kind='stable')
        return _set_masks(results, stack[order])


@TRANSFORMS.register_module()
class PackMaskInputs(PackSegInputs):
    """mmseg's ``PackSegInputs`` plus ``data_sample.gt_masks``: the mask fields stacked to
    (N, H, W) uint8 (N may be 0). A label map still in ``results`` is not packed: PixelCLIP
    learns from masks alone."""

    def transform(self, results: dict) -> dict:
        keys: Sequence[str] = results.pop('mask_fields', None)
        if keys is None:
            raise KeyError('PackMaskInputs: no masks; put LoadSA1BMasks, GenerateMasks or '
                           'SegMapToMasks in the pipeline (or use PackSegInputs when the model '
                           'makes its own masks, e.g. DINO k-means)')
        results.pop('gt_seg_map', None)
        shape = results['img'].shape[:2]
        masks = [results.pop(k) for k in keys]
        stack = np.stack(masks) if masks else np.zeros((0, *shape), np.uint8)
        if stack.shape[1:] != shape:
            raise ValueError(f'PackMaskInputs: masks {stack.shape[1:]} but image {shape}')
        packed = super().transform(results)
        packed['data_samples'].gt_masks = torch.from_numpy(np.ascontiguousarray(stack))
        return packed

