from .dense_clip import build_dense_clip
from .segmenter import METHOD_SETTINGS, OpenVocabSegmenter, SegmentationResult, load_image

__all__ = ['build_dense_clip', 'OpenVocabSegmenter', 'SegmentationResult', 'METHOD_SETTINGS',
           'load_image']
