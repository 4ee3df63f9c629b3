"""Text side: vocabularies, templates, the differentiable text encoder, prompt learners and
the cached classifier of training-free methods (DESIGN §4)."""
from .classifier import (TextClassifier, build_text_classifier, default_cache_dir,
                         encode_text_trimmed, file_fingerprint)
from .encoder import OpenCLIPTextEncoder
from .prompts import ContextPrompt, TemplatePrompt, build_text_side
from .templates import TEMPLATE_SETS, get_templates
from .vocabulary import Vocabulary

__all__ = [
    'TEMPLATE_SETS', 'OpenCLIPTextEncoder', 'ContextPrompt', 'TemplatePrompt', 'TextClassifier',
    'Vocabulary', 'build_text_classifier', 'default_cache_dir', 'encode_text_trimmed',
    'file_fingerprint', 'get_templates', 'build_text_side'
]
