from .dense_clip import build_dense_clip
from denseclip.utils.image import load_image

from .segmenter import METHOD_SETTINGS, OpenVocabSegmenter, SegmentationResult

__all__ = ['build_dense_clip', 'OpenVocabSegmenter', 'SegmentationResult', 'METHOD_SETTINGS',
           'load_image']
