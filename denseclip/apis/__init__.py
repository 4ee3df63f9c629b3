from denseclip.utils.image import load_image

from .dense_clip import build_dense_clip, known_methods
from .segmenter import OpenVocabSegmenter, SegmentationResult

__all__ = ['build_dense_clip', 'OpenVocabSegmenter', 'SegmentationResult', 'known_methods',
           'load_image']
from .phrase import PhraseLocalizer, PhraseResult  # noqa: E402
__all__ += ['PhraseLocalizer', 'PhraseResult']
