"""Unlabelled image folders for self-supervised heads (CLIP-DINOiser), and toy-world scenes
written to one on first use."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torchvision.transforms as T
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS

from denseclip.datasets.toy import ensure_toy_split
from denseclip.utils.image import load_image
from denseclip.registry import DATASETS


def list_images(root: str | os.PathLike) -> list[Path]:
    """Image files under ``root``, recursively, in the order torchvision's ``ImageFolder``
    enumerates an ImageFolder tree (sorted directories, then sorted names)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f'image folder not found: {root}')
    files = [Path(d) / name for d, _, names in sorted(os.walk(root, followlinks=True))
             for name in sorted(names) if name.lower().endswith(IMG_EXTENSIONS)]
    if not files:
        raise FileNotFoundError(f'{root}: no image files (extensions {IMG_EXTENSIONS}) in it or '
                                'its subdirectories')
    return files


@DATASETS.register_module()
class UnlabeledImageFolder(Dataset):
    """Every image under ``data_root`` (any ImageFolder-style tree; labels are ignored),
    with CLIP-DINOiser's augmentation (train.py@a954aae): ToTensor, Resize(img_size) of the short
    side, RandomCrop(img_size), horizontal flip, ColorJitter(brightness=color_jitter).

    Args:
        data_root: the directory (e.g. ImageNet's ``train/``).
        img_size: resize and crop size (released ``im_size``: 448).
        color_jitter: brightness jitter (released ``T.ColorJitter(0.5)``: brightness only).
        flip_prob: horizontal-flip probability (released: 0.5).
        subset_size: draw this many images *with replacement* once (released ``ds_size``:
            1000, ``np.random.choice``); None uses every image.
        subset_seed: seed of that draw (released: the global ``seed: 0``).

    Items are ``dict(inputs=(3, img_size, img_size) float tensor in [0, 1])``.
    """

    def __init__(self, data_root: str | os.PathLike, img_size: int = 448,
                 color_jitter: float = 0.5, flip_prob: float = 0.5,
                 subset_size: int | None = None, subset_seed: int = 0) -> None:
        self.files = list_images(data_root)
        if subset_size is not None:
            # Same draw as the released np.random.seed(0); np.random.choice(range(n), ds_size).
            picks = np.random.RandomState(subset_seed).choice(len(self.files), subset_size)
            self.files = [self.files[i] for i in picks]
        # Deviation: antialias=True stated explicitly (torchvision's default since 0.17); the
        # README environment (torchvision 0.13.1) resized tensors without antialiasing.
        self.transform = T.Compose([
            T.ToTensor(),
            T.Resize(img_size, antialias=True),
            T.RandomCrop(img_size),
            T.RandomHorizontalFlip(p=flip_prob),
            T.ColorJitter(brightness=color_jitter),
        ])
        self.metainfo = dict(root=os.fspath(data_root), num_images=len(self.files))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return dict(inputs=self.transform(load_image(self.files[index])))


@DATASETS.register_module()
class ToyWorldImageFolder(UnlabeledImageFolder):
    """Toy-world scenes (``denseclip/toy/world.py``) as an :class:`UnlabeledImageFolder`.

    The scenes are written once under ``data_root`` by
    :func:`~denseclip.datasets.toy.ensure_toy_split` (split ``'train'``, atomically; a second
    run reuses them) and read from ``data_root/img_dir/train``; their label maps are written
    too but never read. Scene ``i`` is ``generate_scene(scene_seed(seed, i), size)``: keep
    ``seed`` away from the evaluation split's (``configs/_base_/datasets/toy.py``: seed 0).

    Args:
        data_root: directory of the generated split.
        num_images: scenes to write.
        seed: seed of the split.
        size: side of the square scenes in pixels.
        **kwargs: :class:`UnlabeledImageFolder`'s augmentation and subset arguments.
    """

    def __init__(self, data_root: str | os.PathLike, num_images: int, seed: int = 1,
                 size: int = 224, **kwargs) -> None:
        root = ensure_toy_split(os.fspath(data_root), num_images, seed=seed, size=size,
                                split='train')
        super().__init__(root / 'img_dir' / 'train', **kwargs)
