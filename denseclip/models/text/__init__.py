"""Text side: vocabularies, prompt templates and the cached text classifier (DESIGN §4)."""
from .classifier import (TextClassifier, build_text_classifier, default_cache_dir,
                         encode_text_trimmed, file_fingerprint)
from .templates import TEMPLATE_SETS, get_templates
from .vocabulary import Vocabulary

__all__ = [
    'TEMPLATE_SETS', 'TextClassifier', 'Vocabulary', 'build_text_classifier', 'default_cache_dir',
    'encode_text_trimmed', 'file_fingerprint', 'get_templates'
]
