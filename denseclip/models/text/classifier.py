"""Text classifier: one unit embedding per query (name), averaged over prompt templates.

A frozen, cached wrapper of :class:`~denseclip.models.text.encoder.OpenCLIPTextEncoder`, the text
side trained methods run with gradients.

The embedding of a name is the mean over templates of the L2-normalised text embeddings of
``template.format(name)``, L2-normalised again, as CLIP's zero-shot ImageNet classifier and
every training-free method here do (reference notes §1.2; e.g. MaskCLIP
``tools/maskclip_utils/prompt_engineering.py@245d31f`` ``zeroshot_classifier``).

Classifiers are cached on disk per (model identity, query names, templates): building one for
ADE20K's 150 classes x 80 templates runs the text tower 12,000 times.
"""
import functools
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Optional, Union

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from .encoder import OpenCLIPTextEncoder, trim_reason
from .templates import get_templates
from .vocabulary import ClassSpec, Vocabulary

__all__ = [
    'TextClassifier', 'build_text_classifier', 'encode_text_trimmed', 'file_fingerprint',
    'default_cache_dir', 'CACHE_FORMAT_VERSION'
]

logger = logging.getLogger(__name__)

# Bump when the stored content or the embedding recipe changes: old entries then miss.
CACHE_FORMAT_VERSION = 1

Tokenizer = Callable[[list[str]], Tensor]


@dataclass(frozen=True)
class TextClassifier:
    """Unit text embeddings for the Q queries of a vocabulary.

    Attributes:
        embeddings: ``(Q, D)`` float32, unit rows, on the text model's device.
        query_to_class: ``(Q,)`` int64 class index of each query, same device.
        vocabulary: the K classes the queries come from.
        templates: the T templates averaged over.
    """

    embeddings: Tensor
    query_to_class: Tensor
    vocabulary: Vocabulary
    templates: tuple[str, ...]

    @property
    def class_names(self) -> list[str]:
        """The first name of each class, length K."""
        return self.vocabulary.class_names

    @property
    def num_classes(self) -> int:
        """K."""
        return self.vocabulary.num_classes


def encode_text_trimmed(model: nn.Module, tokens: Tensor) -> Tensor:
    """``model.encode_text(tokens)`` without running the padding after the last end-of-text.

    :meth:`OpenCLIPTextEncoder.encode_tokens` over ``model``'s own text tower (shared, not copied);
    towers it cannot trim (``CustomTextCLIP`` / HF text towers, no causal mask, other pool
    types) run ``model.encode_text(tokens)``.

    Args:
        model: an open_clip model, or a :class:`OpenCLIPTextEncoder`.
        tokens: ``(N, L)`` int64 token ids from the model's tokenizer, on the model's device.

    Returns:
        ``(N, D)`` unnormalised text embeddings in the model's dtype.
    """
    if isinstance(model, OpenCLIPTextEncoder):
        return model.encode_tokens(tokens)
    reason = trim_reason(model)
    if reason is not None:
        logger.debug('encode_text_trimmed: full-length encode_text, %s', reason)
        return model.encode_text(tokens)
    return OpenCLIPTextEncoder(clip=model, frozen=False).encode_tokens(tokens)


def _encode_queries(encoder: OpenCLIPTextEncoder, queries: Sequence[str],
                    templates: Sequence[str], batch_size: int) -> Tensor:
    """Template-averaged unit embeddings, ``(Q, D)`` float32 on the encoder's device."""
    chunks = []
    per_batch = max(1, batch_size // len(templates))  # names per text-tower forward
    with torch.inference_mode():
        for start in range(0, len(queries), per_batch):
            emb = encoder.encode_prompts(queries[start:start + per_batch], templates)
            chunks.append(F.normalize(emb.float(), dim=-1))  # (b, T, D)
        emb = F.normalize(torch.cat(chunks).mean(dim=1), dim=-1)  # (Q, D)
    # clone outside inference mode, so the result can meet tensors that require grad
    return emb.clone()


def default_cache_dir() -> Path:
    """``$DENSECLIP_CACHE_DIR/text``, else ``~/.cache/denseclip/text``."""
    root = os.environ.get('DENSECLIP_CACHE_DIR')
    return (Path(root) if root else Path.home() / '.cache' / 'denseclip') / 'text'


def _cache_key(model_id: str, queries: Sequence[str], templates: Sequence[str]) -> str:
    # JSON keeps the boundaries between strings unambiguous
    payload = json.dumps({'format_version': CACHE_FORMAT_VERSION, 'model': model_id,
                          'queries': list(queries), 'templates': list(templates)},
                         ensure_ascii=False)
    return hashlib.sha256(payload.encode('utf-8')).hexdigest()


def _load_cached(path: Path, key: str, num_queries: int) -> Optional[Tensor]:
    """The cached ``(Q, D)`` embeddings, or None on a miss or an unusable file."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework='pt') as f:
            stored_key = (f.metadata() or {}).get('key')
            emb = f.get_tensor('embeddings')
        if stored_key != key:
            raise ValueError(f'stored key {stored_key!r} is not {key!r}')
        if emb.dtype != torch.float32 or emb.ndim != 2 or emb.shape[0] != num_queries:
            raise ValueError(f'embeddings are {emb.dtype} {tuple(emb.shape)}, expected '
                             f'float32 ({num_queries}, D)')
        if not torch.isfinite(emb).all():
            raise ValueError('embeddings are not finite')
    except Exception as err:  # any unreadable entry is a miss: the cache only saves time
        logger.warning('text classifier cache %s is unusable (%s: %s); recomputing and '
                       'rewriting it', path, type(err).__name__, err)
        return None
    return emb


def _save_cached(path: Path, key: str, model_id: str, emb: Tensor) -> None:
    """Write atomically: a temporary file in the same directory, then a rename."""
    from denseclip.engine.checkpoint import atomic_replace  # the engine imports the text side

    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix='.tmp')
        os.close(fd)
        save_file({'embeddings': emb.detach().cpu().contiguous()}, tmp,
                  metadata={'key': key, 'model': model_id,
                            'format_version': str(CACHE_FORMAT_VERSION)})
        atomic_replace(tmp, path)
    except OSError as err:  # the cache only saves time: a read-only disk must not fail a run
        logger.warning('could not write text classifier cache %s: %s', path, err)
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def build_text_classifier(
    model: nn.Module,
    tokenizer: Optional[Tokenizer],
    vocabulary: Union[Vocabulary, Sequence[ClassSpec]],
    templates: Union[str, Sequence[str]] = 'openai_imagenet',
    *,
    model_id: Optional[str] = None,
    cache_dir: Union[str, PathLike, None] = None,
    batch_size: int = 256,
) -> TextClassifier:
    """Embed every query of a vocabulary, averaged over templates (DESIGN §4, notes §1.2).

    Args:
        model: a :class:`OpenCLIPTextEncoder`, or an open_clip model whose text tower runs
            through one (its weights shared, never copied).
        tokenizer: maps a list of strings to ``(N, L)`` int64 tokens (open_clip tokenizer)
            for an open_clip model (None: the one its name implies); None for an encoder,
            which brings its own.
        vocabulary: a :class:`Vocabulary`, or a list accepted by ``Vocabulary.from_list``.
        templates: a template set name or list, see :func:`get_templates`.
        model_id: identity of the text model's weights and tokenizer, e.g.
            ``f'ViT-B-16-quickgelu:{file_fingerprint(ckpt)}'``; it keys the on-disk cache
            together with the exact query names and templates. None disables the cache.
        cache_dir: cache directory; default :func:`default_cache_dir`.
        batch_size: prompts per text-tower forward (rounded down to whole names).

    Returns:
        The classifier: ``embeddings (Q, D)`` float32 unit rows and ``query_to_class (Q,)``
        on the model's device. A cache hit returns the stored tensors without encoding.
    """
    if not isinstance(vocabulary, Vocabulary):
        vocabulary = Vocabulary.from_list(vocabulary)
    templates = tuple(get_templates(templates))
    if batch_size < 1:
        raise ValueError(f'build_text_classifier: batch_size={batch_size}; expected >= 1')
    queries = vocabulary.queries
    if not isinstance(model, OpenCLIPTextEncoder):
        model = OpenCLIPTextEncoder(clip=model, tokenizer=tokenizer, frozen=False)
    elif tokenizer is not None:
        raise ValueError('build_text_classifier: an OpenCLIPTextEncoder brings its own '
                         'tokenizer; pass tokenizer=None')
    encoder = model
    device = encoder.device

    path = key = None
    emb = None
    if model_id is not None:
        key = _cache_key(model_id, queries, templates)
        path = Path(cache_dir if cache_dir is not None else default_cache_dir())
        path = path / f'{key}.safetensors'
        emb = _load_cached(path, key, len(queries))
        if emb is not None:
            logger.info('text classifier: %d queries x %d templates loaded from %s',
                        len(queries), len(templates), path)
    if emb is None:
        start = time.perf_counter()
        emb = _encode_queries(encoder, queries, templates, batch_size)
        logger.info('text classifier: %d queries x %d templates encoded in %.1f s',
                    len(queries), len(templates), time.perf_counter() - start)
        if path is not None:
            _save_cached(path, key, model_id, emb)
    return TextClassifier(embeddings=emb.to(device),
                          query_to_class=vocabulary.query_to_class.to(device),
                          vocabulary=vocabulary, templates=templates)


@functools.lru_cache(maxsize=64)
def _sha256_file(path: str, size: int, mtime_ns: int) -> str:
    # size and mtime_ns are part of the lru_cache key: a changed file is hashed again
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def file_fingerprint(path: Union[str, PathLike]) -> str:
    """sha256 hex digest of a file's content, memoised per (path, size, mtime).

    Callers build a text-cache ``model_id`` from it, so a replaced checkpoint never reuses
    embeddings computed from the old one.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'file_fingerprint: {str(path)!r} does not exist or is not a '
                                'file')
    stat = path.stat()
    return _sha256_file(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
