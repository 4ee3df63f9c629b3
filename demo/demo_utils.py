"""What ``image_demo.py`` and ``app.py`` share: model options, the bundled toy model, vocabularies.

With no ``--model``, ``--pretrained`` or ``--config`` the demos run the bundled toy CLIP
(``denseclip/toy``): a 4-layer ViT trained on synthetic shapes scenes, so that they work
offline on a fresh install. It knows the 13 toy-world classes and nothing else.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from denseclip.apis import OpenVocabSegmenter, PhraseLocalizer
from denseclip.apis import known_methods
from denseclip.models.text import Vocabulary
from denseclip.toy import TOY_CLASSES

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / 'demo' / 'examples'
TOY_EXAMPLE = EXAMPLES / 'toy_world.png'
TOY_VOCABULARY = ','.join(TOY_CLASSES)
TOY_NOTE = ('Using the bundled TOY model: a tiny CLIP trained on synthetic shapes scenes, NOT a '
            'real CLIP; it only knows the toy-world classes. Pass --model/--pretrained for a '
            'real CLIP.')


def toy_config(method: str) -> Path:
    """The toy-world config of ``method`` (toy CLIP weights, templates and settings)."""
    path = REPO / 'configs' / method / f'{method}_toy-vit-p16_toy.py'
    if not path.is_file():
        known = sorted(p.parent.name for p in REPO.glob('configs/*/*_toy-vit-p16_toy.py'))
        raise KeyError(f'--method {method!r} has no toy config {path}; with the toy model use '
                       f'one of {known}, or pass --model/--pretrained')
    return path


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--method --model --pretrained --config --device``, shared by both demos."""
    group = parser.add_argument_group('model (default: the bundled toy CLIP)')
    group.add_argument('--method', choices=known_methods(), default=None,
                       help='dense CLIP method (default: sclip); not with --config')
    group.add_argument('--model', default=None,
                       help='open_clip model name or model-config JSON, e.g. ViT-B-16; alone it '
                       'implies --pretrained openai')
    group.add_argument('--pretrained', default=None,
                       help='open_clip tag (openai, laion2b_s34b_b88k, ...) or a weights file; '
                       'alone, a file is read as an OpenAI state dict (architecture inferred)')
    group.add_argument('--config', default=None,
                       help='a configs/ file (its method, model and settings); --pretrained '
                       'replaces its weights')
    group.add_argument('--device', default='cpu', help='cpu or cuda')


def check_model_arguments(args: argparse.Namespace) -> None:
    """Raise ``ValueError`` on contradictory model options (before any weight is read)."""
    if args.config is not None and (args.method is not None or args.model is not None):
        raise ValueError('--config sets the method and the model; drop --method/--model or '
                         '--config')
    if args.config is not None and not Path(args.config).is_file():
        raise FileNotFoundError(f'--config {args.config}: no such file')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'--device {args.device}: CUDA is not available here; use --device cpu')


def is_toy(args: argparse.Namespace) -> bool:
    """True when no model option is given: the demos then use the bundled toy CLIP."""
    return args.config is None and args.model is None and args.pretrained is None


def build_segmenter(args: argparse.Namespace) -> OpenVocabSegmenter:
    """The segmenter the options describe (see :func:`add_model_arguments`)."""
    method = args.method or 'sclip'
    if args.config is not None:
        return OpenVocabSegmenter.from_config(args.config, pretrained=args.pretrained,
                                              device=args.device)
    if is_toy(args):
        logger.info('toy model: %s', toy_config(method))
        return OpenVocabSegmenter.from_config(toy_config(method), device=args.device)
    pretrained = args.pretrained if args.pretrained is not None else 'openai'
    return OpenVocabSegmenter(method=method, model=args.model, pretrained=pretrained,
                              device=args.device)


def parse_vocabulary(text: str) -> Vocabulary:
    """``'person;pedestrian,car'`` -> a :class:`Vocabulary`; ``ValueError`` with the fix."""
    if not text.strip():
        raise ValueError('the class list is empty; give comma-separated class names, synonyms '
                         'split by ";", e.g. "person;pedestrian,car,grass"')
    return Vocabulary.from_string(text).require_distinct_names()  # the API's rule


TOY_PHRASE_CONFIG = REPO / 'configs' / 'grounding' / 'regiontoken_toy-vit-p16_toy.py'


def build_localizer(args: argparse.Namespace) -> PhraseLocalizer:
    """The phrase localizer the options describe: region tokens for a ViT CLIP, the dilated
    ResNet for an ``RN*`` model; the toy CLIP's region tokens with no model option."""
    if args.method is not None:
        raise ValueError('--method names a segmentation method; phrase mode uses region tokens '
                         '(ViT) or the dilated ResNet (RN*): drop --method')
    if args.config is not None:
        return PhraseLocalizer.from_config(args.config, pretrained=args.pretrained,
                                           device=args.device)
    if is_toy(args):
        return PhraseLocalizer.from_config(TOY_PHRASE_CONFIG, device=args.device)
    method = 'dilated_resnet' if str(args.model or '').startswith('RN') else 'region_tokens'
    pretrained = args.pretrained if args.pretrained is not None else 'openai'
    return PhraseLocalizer(method=method, model=args.model, pretrained=pretrained,
                           device=args.device)
