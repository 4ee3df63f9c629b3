"""Prompt learners: how class names become text embeddings for a trained method.

Protocol: ``prompt(text_encoder, names) -> (Q, P, D)`` unnormalised embeddings, one per name
and prompt (P templates, or P learned context sets), with gradients through the encoder. Heads
reduce the P axis as their paper does (DenseCLIP: P = 1; MTA-CLIP: P = 3 context sets scored
separately; CAT-Seg: P templates in its cost volume). Learnable class-name tokens (PixelCLIP)
implement the same call.

* :class:`TemplatePrompt`: fixed templates ("a photo of a {}.").
* :class:`ContextPrompt`: CoOp's learned context (Zhou et al., "Learning to Prompt for
  Vision-Language Models", IJCV 2022, https://arxiv.org/abs/2109.01134) as DenseCLIP builds it
  (raoyongming/DenseCLIP@5eda47f segmentation/denseclip/models.py ``CLIPTextContextEncoder``,
  denseclip.py ``contexts``): [SOS, ctx_1..ctx_n, name tokens, EOS], no template.
"""
from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from denseclip.registry import MMDET_MODELS, MODELS

from .encoder import OpenCLIPTextEncoder
from .templates import get_templates

__all__ = ['TemplatePrompt', 'ContextPrompt', 'build_text_side']


@MODELS.register_module()
@MMDET_MODELS.register_module()
class TemplatePrompt(BaseModule):
    """Class names in fixed templates; nothing is learned.

    Args:
        templates: a template set name or list (see :func:`get_templates`).
    """

    def __init__(self, templates: str | Sequence[str] = 'openai_imagenet',
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.templates = tuple(get_templates(templates))

    def forward(self, text_encoder: OpenCLIPTextEncoder, names: Sequence[str]) -> Tensor:
        """(Q, T, D): every name in every template."""
        return text_encoder.encode_prompts(names, self.templates)


@MODELS.register_module()
@MMDET_MODELS.register_module()
class ContextPrompt(BaseModule):
    """Learned context tokens shared by all classes: [SOS, p_1..p_n, name, EOS].

    Args:
        num_sets: P, independent context sets (DenseCLIP 1, MTA-CLIP 3).
        num_tokens: n, learned tokens per set (DenseCLIP: 8 = context 13 - 5).
        name_length: BPE tokens a class name may take (DenseCLIP: 3, ``tokenize(name,
            context_length=5)`` with truncation off); a longer name raises.
        width: W, the text tower's token width (the segmentor passes its encoder's).
        init_std: std of the truncated-normal init (DenseCLIP: ``nn.init.trunc_normal_`` at
            its default std 1, cut at +-2).
    """

    def __init__(self, width: int | None = None, num_sets: int = 1, num_tokens: int = 8,
                 name_length: int = 3, init_std: float = 1.0,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if width is None:
            raise ValueError('ContextPrompt: width (the text tower\'s token width) is needed; '
                             'OpenVocabEncoderDecoder passes its text encoder\'s')
        if min(num_sets, num_tokens, name_length) < 1:
            raise ValueError(f'ContextPrompt: num_sets={num_sets}, num_tokens={num_tokens}, '
                             f'name_length={name_length}; each must be >= 1')
        self.name_length = name_length
        self.contexts = nn.Parameter(torch.empty(num_sets, num_tokens, width))  # (P, n, W)
        nn.init.trunc_normal_(self.contexts, std=init_std, a=-2 * init_std, b=2 * init_std)
        self._tokens: dict[tuple[str, ...], Tensor] = {}

    @property
    def sequence_length(self) -> int:
        """Tokens per prompt: SOS + n + name_length + EOS (DenseCLIP: 13)."""
        return self.contexts.shape[1] + self.name_length + 2

    def name_tokens(self, text_encoder: OpenCLIPTextEncoder, names: Sequence[str]) -> Tensor:
        """(K, name_length + 2) ids [SOS, name, EOS, pad]; raises for a name that is too long.

        Memoised per vocabulary: the ids never change."""
        key = tuple(names)
        if key not in self._tokens:
            full = text_encoder.tokenize(names)  # (K, 77)
            lengths = text_encoder.eot_index(full) - 1  # BPE tokens between SOS and EOS
            too_long = [(n, int(c)) for n, c in zip(names, lengths) if c > self.name_length]
            if too_long:
                name, count = too_long[0]
                raise ValueError(
                    f'ContextPrompt: class {name!r} is {count} BPE tokens; at most '
                    f'name_length={self.name_length} fit the {self.sequence_length}-token '
                    f'context ({len(too_long)} of {len(names)} names are too long: '
                    f'{[n for n, _ in too_long[:10]]}). Shorten these names in the name file '
                    '(e.g. a one-word synonym) or raise name_length (and context_length).')
            self._tokens[key] = full[:, :self.name_length + 2].clone()
        return self._tokens[key].to(self.contexts.device)

    def forward(self, text_encoder: OpenCLIPTextEncoder, names: Sequence[str]) -> Tensor:
        """(K, P, D) text embeddings of each name with each context set."""
        tokens = self.name_tokens(text_encoder, names)  # (K, 2 + name_length)
        P, n, W = self.contexts.shape
        K = tokens.shape[0]
        emb = text_encoder.token_embedding(tokens)  # (K, 2 + m, W)
        ctx = self.contexts.to(emb.dtype)[:, None].expand(P, K, n, W)
        emb = emb[None].expand(P, K, -1, W)
        x = torch.cat([emb[:, :, :1], ctx, emb[:, :, 1:]], dim=2)  # (P, K, n + 2 + m, W)
        eot = (text_encoder.eot_index(tokens) + n).repeat(P)  # DenseCLIP: argmax + N2
        out = text_encoder(x.reshape(P * K, -1, W), eot)  # (P*K, D)
        return out.view(P, K, -1).transpose(0, 1)  # (K, P, D)

    def extra_repr(self) -> str:
        P, n, W = self.contexts.shape
        return f'num_sets={P}, num_tokens={n}, name_length={self.name_length}, width={W}'


def build_text_side(backbone: nn.Module, text_encoder: dict | None, prompt: dict,
                    registry=MODELS) -> tuple[OpenCLIPTextEncoder, nn.Module]:
    """The text side of a trained model (segmentor or detector), built one way.

    Args:
        backbone: the image backbone; its loaded CLIP (``backbone.clip``, ``backbone.source``)
            gives the text tower unless ``text_encoder`` names its own ``model``/``pretrained``.
        text_encoder: :class:`OpenCLIPTextEncoder` arguments (``type`` may be omitted).
        prompt: the prompt learner's config; its ``width`` defaults to the text tower's.
        registry: where to build (mmdet's ``MODELS`` inside a detector, whose default scope
            would otherwise redirect mmseg's registry).

    Returns:
        (text encoder, prompt learner).
    """
    text_cfg = dict(text_encoder or {})
    text_cfg.setdefault('type', 'OpenCLIPTextEncoder')
    if 'model' not in text_cfg and 'pretrained' not in text_cfg:
        text_cfg.update(clip=backbone.clip, source=backbone.source)
    encoder = registry.build(text_cfg)
    prompt = dict(prompt)
    if 'width' in inspect.signature(registry.get(prompt['type'])).parameters:
        prompt.setdefault('width', encoder.width)
    return encoder, registry.build(prompt)
