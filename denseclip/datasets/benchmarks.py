"""Benchmark datasets of the training-free OVSS protocol that mmseg 1.x lacks.

The eight benchmarks (reference notes §2.1), their classes and label encodings:

- VOC21: mmseg ``PascalVOCDataset``, 21 classes, 0 = background (evaluated), 255 ignored.
- VOC20: :class:`PascalVOC20Dataset`, 20 classes, the VOC PNGs with ``reduce_zero_label=True``.
- PC60: mmseg ``PascalContextDataset``, 60 classes, 0 = background (evaluated).
- PC59: mmseg ``PascalContextDataset59``, 59 classes, ``reduce_zero_label=True``.
- Object: :class:`COCOObjectDataset`, 81 classes, ``*_instanceTrainIds.png``, 0 = background.
- Stuff: mmseg ``COCOStuffDataset``, 171 classes, ``*_labelTrainIds.png``, 255 ignored.
- City: mmseg ``CityscapesDataset``, 19 classes, ``*_gtFine_labelTrainIds.png``, 255 ignored.
- ADE: mmseg ``ADE20KDataset``, 150 classes, ``reduce_zero_label=True``.

The two classes here follow SCLIP ``custom_datasets.py@b56bd30`` (identical in NACLIP, ClearCLIP
and ProxyCLIP), whose ``PascalContext60Dataset``/``PascalContext59Dataset`` equal mmseg's
``PascalContextDataset``/``PascalContextDataset59``, so those are reused. CAT-Seg's ADE20K-847 and
PASCAL-Context-459 (labels above 255) are in :mod:`.many_classes`.
"""
from mmseg.datasets import BaseSegDataset, COCOStuffDataset, PascalVOCDataset

from ..registry import DATASETS

__all__ = ['PascalVOC20Dataset', 'COCOObjectDataset']


@DATASETS.register_module()
class PascalVOC20Dataset(PascalVOCDataset):
    """PASCAL VOC 2012 without the background class (VOC20).

    The same files as VOC21 (``JPEGImages/*.jpg``, ``SegmentationClass/*.png`` with 0 =
    background, 1-20 objects, 255 = boundary); ``reduce_zero_label=True`` turns background into
    the ignore label 255 and object ``k`` into class ``k - 1``.

    Args:
        ann_file: the split list, e.g. ``ImageSets/Segmentation/val.txt``.
        **kwargs: the rest of :class:`mmseg.datasets.BaseSegDataset`'s arguments.
    """
    METAINFO = dict(classes=PascalVOCDataset.METAINFO['classes'][1:],
                    palette=PascalVOCDataset.METAINFO['palette'][1:])

    def __init__(self, ann_file: str, reduce_zero_label: bool = True, **kwargs) -> None:
        super().__init__(ann_file=ann_file, reduce_zero_label=reduce_zero_label, **kwargs)


@DATASETS.register_module()
class COCOObjectDataset(BaseSegDataset):
    """COCO-Object: COCO 2017 val with 80 thing classes and one background (81 classes).

    Labels are ``annotations/val2017/<id>_instanceTrainIds.png`` written by
    ``tools/dataset_converters/coco_object.py`` from the COCO-Stuff-164k maps: 0 = background
    (every stuff class and, as in the reference converter, unlabelled pixels), ``1..80`` = the
    things in COCO order. Background is a class and is evaluated.

    Args:
        img_suffix: image file suffix.
        seg_map_suffix: label file suffix.
        **kwargs: the rest of :class:`mmseg.datasets.BaseSegDataset`'s arguments.
    """
    METAINFO = dict(classes=('background', ) + COCOStuffDataset.METAINFO['classes'][:80],
                    palette=[[0, 0, 0]] + COCOStuffDataset.METAINFO['palette'][:80])

    def __init__(self, img_suffix: str = '.jpg', seg_map_suffix: str = '_instanceTrainIds.png',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
