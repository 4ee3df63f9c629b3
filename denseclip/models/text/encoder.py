"""CLIP's text tower as a differentiable module: the one text side of every method.

Training-free methods average its embeddings over templates into a cached classifier
(:func:`~denseclip.models.text.classifier.build_text_classifier`); trained methods feed it
learned prompts (:mod:`~denseclip.models.text.prompts`) and keep its graph, so gradients reach
the prompts even when the tower itself is frozen (``requires_grad=False``; DenseCLIP issue #28:
the released code froze it with ``lr_mult=0``, and mmcv's absolute ``min_lr`` still moved it).

CLIP's text attention is causal and pools the end-of-text (EOT) token, so a batch of prompts
runs only up to its last EOT (:meth:`OpenCLIPTextEncoder.encode_tokens`): the same result to float
rounding, several times faster than the padded 77-token context (README, Performance).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import open_clip
import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from denseclip.clip import CLIPSource, load_clip
from denseclip.registry import MMDET_MODELS, MODELS

__all__ = ['OpenCLIPTextEncoder', 'trim_reason']

logger = logging.getLogger(__name__)


def trim_reason(model: nn.Module) -> str | None:
    """Why ``model`` is not a causal open_clip CLIP text tower pooling its EOT token (the
    towers :class:`OpenCLIPTextEncoder` can run from token embeddings), or None if it is one."""
    for attr in ('token_embedding', 'positional_embedding', 'transformer', 'ln_final',
                 'text_projection', 'text_pool_type', 'attn_mask'):
        if not hasattr(model, attr):
            return f'{type(model).__name__} has no {attr!r} (not an open_clip CLIP text tower)'
    if model.text_pool_type not in ('argmax', 'eos'):
        return f'text_pool_type={model.text_pool_type!r} does not pool the end-of-text token'
    mask = model.attn_mask
    if not isinstance(mask, Tensor):
        return 'no causal attention mask: every output depends on the padding'
    length = mask.shape[-1]
    if mask.shape != (length, length):
        return f'attn_mask has shape {tuple(mask.shape)}, not (L, L)'
    causal = torch.ones(length, length, dtype=torch.bool, device=mask.device).triu(1)
    if not torch.equal(torch.isneginf(mask), causal) or mask[~causal].any():
        return 'attn_mask is not the causal mask'
    return None


def clip_tokenizer(source: CLIPSource | None):
    """The open_clip tokenizer of a loaded CLIP: its model name's, else CLIP's BPE (model-config
    files and inferred OpenAI architectures use it)."""
    return open_clip.get_tokenizer(source.tokenizer_name if source is not None else 'ViT-B-16')


@MODELS.register_module()
@MMDET_MODELS.register_module()
class OpenCLIPTextEncoder(BaseModule):
    """CLIP's text tower: token embeddings in, one joint-space embedding per sequence out.

    Args:
        model: open_clip model name, model-config JSON, or None (inferred from ``pretrained``);
            ignored when ``clip`` is given.
        pretrained: open_clip tag, local weights file, or None (random weights).
        clip: an already-loaded open_clip model whose text tower to use (shared, not copied).
            The segmentors pass their backbone's, so one ``pretrained`` names both towers.
        source: where ``clip`` came from (names the tokenizer); defaults to the loader's.
        tokenizer: the tokenizer to use instead of the one ``source`` names.
        context_length: keep only the first positions of the positional embedding (DenseCLIP:
            13 of 77, as its released ``init_weights`` truncates them); None keeps all.
        frozen: ``requires_grad=False`` on every weight; gradients still flow to the inputs.

    Attributes ``token_embedding``, ``positional_embedding``, ``transformer``, ``ln_final`` and
    ``text_projection`` keep open_clip's (= OpenAI's) names, so released checkpoints map 1:1.
    Towers that cannot run from token embeddings (HF text towers of ``CustomTextCLIP``) are kept
    whole as ``tower`` and only encode token ids.
    """

    def __init__(self, model: str | os.PathLike | None = 'ViT-B-16',
                 pretrained: str | os.PathLike | None = None, *, clip: nn.Module | None = None,
                 source: CLIPSource | None = None, tokenizer: Callable | None = None,
                 context_length: int | None = None, frozen: bool = True,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if clip is None:
            clip, source = load_clip(model, pretrained)
        self.source = source
        self.tokenizer = tokenizer if tokenizer is not None else clip_tokenizer(source)
        self.reason = trim_reason(clip)
        if self.reason is not None:
            if context_length is not None:
                raise ValueError(f'OpenCLIPTextEncoder: context_length={context_length} needs an '
                                 f'open_clip CLIP text tower; {self.reason}')
            self.tower = clip.text
        else:
            self.token_embedding = clip.token_embedding
            self.transformer = clip.transformer
            self.ln_final = clip.ln_final
            self.text_projection = clip.text_projection
            self.pool_type = clip.text_pool_type
            self.eos_id = getattr(clip, 'text_eos_id', None)
            pos, mask = clip.positional_embedding, clip.attn_mask
            if context_length is not None:
                if not 0 < context_length <= pos.shape[0]:
                    raise ValueError(f'OpenCLIPTextEncoder: context_length={context_length}; the '
                                     f'text tower has {pos.shape[0]} positions')
                pos = nn.Parameter(pos.detach()[:context_length].clone())  # (L, W)
                mask = mask[:context_length, :context_length]
            self.positional_embedding = pos
            self.register_buffer('attn_mask', mask, persistent=False)
        if frozen:
            self.requires_grad_(False)

    @property
    def width(self) -> int:
        """W, the width of token embeddings."""
        return self.token_embedding.embedding_dim

    @property
    def context_length(self) -> int:
        """L_max, positions of the positional embedding."""
        return self.positional_embedding.shape[0]

    def tokenize(self, texts: Sequence[str], context_length: int | None = None) -> Tensor:
        """(N, L) int64 token ids on the encoder's device (L = ``context_length`` or the
        tokenizer's own 77)."""
        kwargs = {} if context_length is None else dict(context_length=context_length)
        return self.tokenizer(list(texts), **kwargs).to(self.device)

    def eot_index(self, tokens: Tensor) -> Tensor:
        """(N,) position of each sequence's end-of-text token."""
        if self.pool_type == 'argmax':  # CLIP's EOT has the largest id; argmax picks the first
            return tokens.argmax(dim=-1)
        return (tokens == self.eos_id).int().argmax(dim=-1)

    def forward(self, x: Tensor, eot: Tensor) -> Tensor:
        """Encode token embeddings.

        Args:
            x: (N, L, W) token embeddings, start-of-text first; L <= :attr:`context_length`.
            eot: (N,) position of the token to pool (the end of text).

        Returns:
            (N, D) unnormalised joint-space embeddings.
        """
        if self.reason is not None:
            raise TypeError(f'OpenCLIPTextEncoder: cannot encode token embeddings: {self.reason}')
        N, L, _ = x.shape
        if L > self.context_length:
            raise ValueError(f'OpenCLIPTextEncoder: {L} tokens do not fit the context of '
                             f'{self.context_length} positions')
        cast = self.transformer.get_cast_dtype()
        x = x.to(cast) + self.positional_embedding[:L].to(cast)  # (N, L, W)
        x = self.transformer(x, attn_mask=self.attn_mask[:L, :L])  # (N, L, W)
        x = self.ln_final(x)[torch.arange(N, device=x.device), eot]  # (N, W)
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(x)
        return x if self.text_projection is None else x @ self.text_projection  # (N, D)

    def encode_tokens(self, tokens: Tensor) -> Tensor:
        """``clip.encode_text(tokens)``, run only up to the batch's last end-of-text token.

        Args:
            tokens: (N, L) int64 token ids from :meth:`tokenize`.

        Returns:
            (N, D) unnormalised embeddings.
        """
        if self.reason is not None:
            return self.tower(tokens)
        eot = self.eot_index(tokens)  # (N,)
        tokens = tokens[:, :int(eot.max()) + 1]  # causal: nothing after the EOT changes it
        return self(self.token_embedding(tokens), eot)

    def encode_prompts(self, names: Sequence[str], templates: Sequence[str]) -> Tensor:
        """Embeddings of every ``template.format(name)``, with gradients.

        Returns:
            (Q, T, D) unnormalised, Q = len(names), T = len(templates).
        """
        prompts = [template.format(name) for name in names for template in templates]
        # One position more than the context: a prompt that needs it does not fit (open_clip's
        # tokenizer would cut it, end token last, and two names that differ only past the cut
        # would get one embedding).
        L = getattr(self.tokenizer, 'context_length', None) or 77
        tokens = self.tokenize(prompts, context_length=L + 1)
        too_long = (self.eot_index(tokens) >= L).nonzero().flatten()
        if too_long.numel():
            i = int(too_long[0])
            count = int(self.eot_index(self.tokenize([prompts[i]], context_length=4096))[0]) + 1
            long_names = len({int(j) // len(templates) for j in too_long})
            raise ValueError(
                f'class {names[i // len(templates)]!r}: the prompt {prompts[i]!r} is {count} '
                f'tokens; the text encoder\'s context holds {L} (start and end tokens '
                f'included). Shorten the name ({long_names} of {len(names)} too long)')
        emb = self.encode_tokens(tokens[:, :L])  # (Q*T, D)
        return emb.view(len(names), len(templates), -1)

    @property
    def device(self) -> torch.device:
        """Where the tower's weights are."""
        param = next(self.parameters(), None)
        if param is None:
            param = next(self.buffers(), None)
        return param.device if param is not None else torch.device('cpu')
