"""Dataset classes mmseg lacks, registered in mmseg's ``DATASETS``."""
from .toy import ToyWorldDataset, ensure_toy_split

__all__ = ['ToyWorldDataset', 'ensure_toy_split']
from .benchmarks import COCOObjectDataset, PascalVOC20Dataset  # noqa: E402
__all__ += ['COCOObjectDataset', 'PascalVOC20Dataset']
from .many_classes import (ADE20K847Dataset, LoadWideAnnotations,  # noqa: E402
                           PascalContext459Dataset)
__all__ += ['ADE20K847Dataset', 'PascalContext459Dataset', 'LoadWideAnnotations']
from . import imagenet_seg  # noqa: E402,F401  (ImageNet-Segmentation, toy foreground)
from . import grounding  # noqa: E402,F401  (ZSGNet, Flickr30k Entities, toy phrases)
from . import sa1b  # noqa: E402,F401  (SA-1B and other class-agnostic mask sources, PixelCLIP)
from . import ovd, toy_det  # noqa: E402,F401  (mmdet's DATASETS: COCO OVD / LVIS, toy instances)
