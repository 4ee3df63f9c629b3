"""Instances of the shapes world: per-object boxes and masks in COCO format, for detection.

Each thing a scene draws (:func:`denseclip.toy.world.generate_scene`) becomes one COCO
instance: its visible pixels (the mask; a later thing may cover up to 15% of it, a ring's hole
shows the stuff) as RLE, the tight box of that mask (``[x, y, w, h]``, pycocotools' ``toBbox``)
and its pixel count as area. Stuff classes are not instances. The masks are rebuilt from the
scene's objects (centre, radius, angle) in drawing order, exactly as the generator drew them,
so no randomness is drawn and the scenes (and their pinned digests) are unchanged; each rebuilt
mask's pixel count is checked against the generator's own ``SceneObject.area``.

Categories are the six things with ids 1-6 in :data:`~denseclip.toy.world.THINGS` order. The
open-vocabulary detection split follows the segmentation one (``toy_open_vocab.py``): the
detector's proposal network trains on the four base things; ``purple square`` and ``black
cross`` are novel (:data:`TOY_DET_BASE_CLASSES`, :data:`TOY_DET_NOVEL_CLASSES`).

The images are the toy split's own (``img_dir/{split}/{i:05d}.png``, written by
:func:`denseclip.datasets.toy.ensure_toy_split`), so a detection and a segmentation config with
the same ``data_root`` and generation settings share one split on disk.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import List

import numpy as np
from pycocotools import mask as mask_utils

from .world import (THING_STYLES, THINGS, TOY_UNSEEN_CLASSES, WORLD_VERSION, Scene,
                    _shape_pixels, generate_scene, scene_seed)

# Bump with any change to what scene_instances returns (tests pin a digest of one scene's).
INSTANCES_VERSION = 1
TOY_DET_CLASSES = THINGS
TOY_DET_NOVEL_CLASSES = tuple(c for c in THINGS if c in TOY_UNSEEN_CLASSES)
TOY_DET_BASE_CLASSES = tuple(c for c in THINGS if c not in TOY_DET_NOVEL_CLASSES)


def instance_masks(scene: Scene) -> np.ndarray:
    """(N, H, W) bool visible masks of ``scene.objects``, in drawing order.

    Each object's pixels are redrawn with the generator's shape routine and later objects
    overwrite earlier ones, as :func:`~denseclip.toy.world.generate_scene` does with its owner
    map.

    Raises:
        RuntimeError: a rebuilt mask's pixel count differs from the object's recorded area
            (the generator changed without this module following it).
    """
    h, w = scene.label.shape
    owner = np.full((h, w), -1, np.int16)
    for i, obj in enumerate(scene.objects):
        rr, cc = _shape_pixels(THING_STYLES[obj.name][0], obj.center, obj.radius, obj.angle,
                               (h, w))
        owner[rr, cc] = i
    masks = owner[None] == np.arange(len(scene.objects))[:, None, None]
    for obj, m in zip(scene.objects, masks):
        if int(m.sum()) != obj.area or not np.all(scene.label[m] == obj.label):
            raise RuntimeError(f'instance_masks: the rebuilt mask of {obj.name!r} has '
                               f'{int(m.sum())} pixels, the scene recorded {obj.area}; '
                               'denseclip/toy/instances.py no longer matches world.py')
    return masks


def scene_instances(scene: Scene) -> List[dict]:
    """COCO annotation dicts (without ``id`` / ``image_id``) of the things in ``scene``:
    ``category_id`` (1-6, :data:`TOY_DET_CLASSES` order), ``bbox`` ``[x, y, w, h]`` of the
    visible mask, ``area`` (its pixels), ``segmentation`` (RLE, ``counts`` as str) and
    ``iscrowd`` 0. Things with no visible pixel are left out."""
    anns = []
    for obj, m in zip(scene.objects, instance_masks(scene)):
        if obj.area == 0:
            continue
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        bbox = [float(v) for v in mask_utils.toBbox(rle)]
        rle['counts'] = rle['counts'].decode('ascii')
        anns.append(dict(category_id=obj.label + 1, bbox=bbox, area=float(obj.area),
                         segmentation=rle, iscrowd=0))
    return anns


def instances_stamp(num_images: int, seed: int = 0, size: int = 224, split: str = 'val') -> dict:
    """What ``instances_{split}.json``'s ``info`` records: the arguments and both versions."""
    return dict(num_images=num_images, seed=seed, size=size, split=split,
                world_version=WORLD_VERSION, instances_version=INSTANCES_VERSION)


def write_instances(root: str | os.PathLike, num_images: int, seed: int = 0, size: int = 224,
                    split: str = 'val') -> Path:
    """Write ``root/annotations/instances_{split}.json`` (COCO format) for the toy split made
    by ``write_split(root, num_images, seed, size, split)``: images ``{i:05d}.png`` with ids
    ``i + 1``, annotation ids from 1, the six thing categories. Written to a temporary file
    and renamed, so readers never see half a file. The images are not written here:
    :func:`ensure_toy_instances` writes both.
    """
    images, anns = [], []
    for i in range(num_images):
        scene = generate_scene(scene_seed(seed, i), size)
        images.append(dict(id=i + 1, file_name=f'{i:05d}.png', height=size, width=size))
        for ann in scene_instances(scene):
            anns.append(dict(ann, id=len(anns) + 1, image_id=i + 1))
    categories = [dict(id=k + 1, name=name, supercategory='thing')
                  for k, name in enumerate(TOY_DET_CLASSES)]
    from denseclip.engine.checkpoint import atomic_write  # the engine imports the datasets

    text = json.dumps(dict(info=instances_stamp(num_images, seed, size, split), images=images,
                           annotations=anns, categories=categories))
    return atomic_write(Path(root, 'annotations', f'instances_{split}.json'),
                        lambda tmp: Path(tmp).write_text(text))


def ensure_toy_instances(root: str | os.PathLike, num_images: int, seed: int = 0,
                         size: int = 224, split: str = 'val') -> Path:
    """The toy split under ``root`` (images, via
    :func:`denseclip.datasets.toy.ensure_toy_split`) and its
    ``annotations/instances_{split}.json``, each written unless already there from the same
    arguments and generator versions. Returns the annotation file's path."""
    from ..datasets.toy import ensure_toy_split  # the datasets package imports mmseg
    ensure_toy_split(str(root), num_images=num_images, seed=seed, size=size, split=split)
    out = Path(root, 'annotations', f'instances_{split}.json')
    if out.is_file():
        try:
            found = json.loads(out.read_text()).get('info')
        except json.JSONDecodeError:
            found = None
        if found == instances_stamp(num_images, seed, size, split):
            return out
    return write_instances(root, num_images, seed, size, split)
