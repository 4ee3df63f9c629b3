"""The shapes world (``denseclip/toy/world.py``) as an mmseg dataset, generated on demand.

A config needs no files on disk::

    dataset=dict(type='ToyWorldDataset', data_root='data/toy_world',
                 generate=dict(num_images=50, seed=0), pipeline=test_pipeline)

writes the split once (atomically, so concurrent workers never see half a split) and reads it
like any mmseg ``img_dir``/``ann_dir`` dataset afterwards.
"""
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from mmseg.datasets import BaseSegDataset

from ..registry import DATASETS
from ..toy.world import (TOY_CLASSES, TOY_PALETTE, WORLD_VERSION, scene_digest, scene_seed,
                          write_split)

logger = logging.getLogger(__name__)

_STAMP = 'toy_world.json'  # the generation parameters, written last: its presence = complete


def ensure_toy_split(root: str, num_images: int, seed: int = 0, size: int = 224,
                     split: str = 'val') -> Path:
    """Write ``write_split(root, num_images, seed, size, split)`` unless it is there already,
    made by this generator.

    The split is written to a temporary sibling directory and renamed to ``root``, so ``root``
    either does not exist or is complete. Its stamp records the arguments, the generator's
    :data:`~denseclip.toy.world.WORLD_VERSION` and the digest of its first scene as the
    installed libraries draw it: a split made by an older world, or whose first scene these
    libraries draw differently, is regenerated (with a warning), never reused. Calling again
    with the same arguments is a no-op.

    Args:
        root: directory of the dataset (created with its parents).
        num_images, seed, size, split: as in :func:`denseclip.toy.world.write_split`.

    Returns:
        ``root`` as a ``Path``.

    Raises:
        ValueError: ``root`` holds a current toy split made with other arguments.
        FileExistsError: ``root`` is a non-empty directory that is not a toy split.
    """
    root = Path(root)
    params = dict(num_images=num_images, seed=seed, size=size, split=split)
    stamp = dict(params, world_version=WORLD_VERSION,
                 first_scene=scene_digest(scene_seed(seed, 0), size) if num_images else None)
    if (root / _STAMP).exists():
        found = json.loads((root / _STAMP).read_text())
        if {k: found.get(k) for k in params} != params:
            raise ValueError(f'ensure_toy_split: {root / _STAMP} holds a split made with '
                             f'{ {k: found.get(k) for k in params} }, asked for {params}; '
                             f'delete {root} or use another data_root')
        if found == stamp:
            return root
        logger.warning('ensure_toy_split: %s was made by another generator (world version %s, '
                       'first scene %s; now %s, %s): regenerating it', root,
                       found.get('world_version'), str(found.get('first_scene'))[:12],
                       WORLD_VERSION, str(stamp['first_scene'])[:12])
    elif root.exists() and any(root.iterdir()):
        raise FileExistsError(f'ensure_toy_split: {root} is not empty and has no {_STAMP}; '
                              'choose an empty or missing directory as data_root')
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{root.name}-', dir=root.parent))
    stale = None
    try:
        write_split(str(tmp), **params)
        (tmp / _STAMP).write_text(json.dumps(stamp, sort_keys=True))
        if (root / _STAMP).exists():  # the stale split goes aside, then away
            stale = Path(tempfile.mkdtemp(prefix=f'.{root.name}-stale-', dir=root.parent))
            os.rename(root, stale / root.name)
        elif root.exists():
            root.rmdir()  # empty, checked above
        os.rename(tmp, root)
    except OSError:
        if not (root / _STAMP).exists():  # not a concurrent writer that finished first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
    return root


@DATASETS.register_module()
class ToyWorldDataset(BaseSegDataset):
    """Scenes of the shapes world: 10 classes (6 coloured shapes, 4 textured stuff), no
    background and no ignore label.

    ``metainfo=dict(classes=subset)`` (names from :data:`denseclip.toy.world.TOY_CLASSES`) is
    passed to :class:`mmseg.datasets.BaseSegDataset`, whose label map renumbers the subset in
    the given order and maps the other classes to 255 (ignored): the open-vocabulary training
    split of ``configs/_base_/datasets/toy_open_vocab.py`` keeps only the seen classes.

    Args:
        generate: if given, ``dict(num_images=..., seed=0, size=224, split='val')`` passed to
            :func:`ensure_toy_split` with ``data_root`` before loading.
        data_root: the dataset directory (required with ``generate``).
        data_prefix: image and label folders under ``data_root``; default
            ``dict(img_path='img_dir/val', seg_map_path='ann_dir/val')``.
        **kwargs: the rest of :class:`mmseg.datasets.BaseSegDataset`'s arguments.
    """
    METAINFO = dict(classes=TOY_CLASSES, palette=[list(c) for c in TOY_PALETTE])

    def __init__(self, generate: Optional[dict] = None, data_root: Optional[str] = None,
                 data_prefix: Optional[dict] = None, **kwargs) -> None:
        if generate is not None:
            if data_root is None:
                raise ValueError('ToyWorldDataset: generate=... needs data_root, the directory '
                                 'to write the split to')
            ensure_toy_split(data_root, **generate)
        if data_prefix is None:
            data_prefix = dict(img_path='img_dir/val', seg_map_path='ann_dir/val')
        super().__init__(img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=False,
                         data_root=data_root, data_prefix=data_prefix, **kwargs)
