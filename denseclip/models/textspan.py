"""TextSpan: "Interpreting CLIP's Image Representation via Text-Based Decomposition"
(Gandelsman, Efros, Steinhardt, ICLR 2024, https://arxiv.org/abs/2310.05916), official code
yossigandelsman/clip_text_span@49f70f3.

The [CLS] image embedding of a CLIP ViT is a sum of direct contributions: the embedding term,
one term per MLP, and one per (layer, head, source token) of every attention layer, after
``ln_post`` is linearised with the actual [CLS] statistics. TextSpan describes each head's
output space with a greedy text basis; the zero-shot segmenter scores the per-patch sum of the
attention terms against the predicted class. No CLIP weight is changed.

Call graph of :class:`TextSpanSegmentor`::

    predict(inputs, data_samples)
      └─ decompose_image(backbone, inputs) -> Decomposition (tokens: Σ_l Σ_h, accumulated)
           └─ patch_scores(tokens, embedding, classifier) -> (B, h, w)
                └─ postprocess_map() -> normalised map (B, H, W), foreground = map > mean
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.structures import SegDataSample
from open_clip.transformer import LayerScale
from open_clip.transformer import VisionTransformer
from torch import Tensor, nn

from denseclip.models.dense.base import NUM_PREFIX_TOKENS, block_qkv, check_block, scaled_scores
from denseclip.models.segmentors.base import CLIP_MEAN, CLIP_STD
from denseclip.models.text import OpenCLIPTextEncoder, Vocabulary, build_text_classifier
from denseclip.registry import MODELS


@dataclass
class Decomposition:
    """Direct contributions to the normalised image embedding r/‖r‖ (joint space, E).

    Released for [CLS] pooling; ``'avg'``-pooled towers (the toy CLIP) are decomposed the same
    way over their pooled tokens (:func:`pooling_weights`).

    ``mlps.sum(1) + heads.sum((1, 2))`` equals r/‖r‖; ``tokens`` splits the attention part
    by source token instead of by head, ``terms`` by both (full mode only).

    Attributes:
        mlps: (B, L+1, E) the embedding term (ln_pre [CLS]) first, then each block's MLP
            (prs_hook.py ``mlps``).
        heads: (B, L, H, E) each head's output summed over source tokens (``head_no_spatial``).
        tokens: (B, 1+N, E) the attention terms summed over layers and heads, per source token
            ([CLS] first): the segmenter's map.
        terms: (B, L, 1+N, H, E) every attention term (prs_hook.py ``attentions`` with
            ``method='head'``), or None in accumulate-only mode.
        embedding: (B, E) r, the unnormalised image embedding (open_clip's pooling, ln_post
            and proj).
        grid: the patch grid (h, w).
    """

    mlps: Tensor
    heads: Tensor
    tokens: Tensor
    terms: Tensor | None
    embedding: Tensor
    grid: tuple[int, int]


def _layer_scale(module: nn.Module, width: int, like: Tensor) -> Tensor:
    """The per-channel factor of ``ls_1``/``ls_2``: LayerScale's gamma, else ones (D,)."""
    if isinstance(module, LayerScale):
        return module.gamma
    if isinstance(module, nn.Identity):
        return like.new_ones(width)
    raise TypeError(f'decompose_image: layer scale {type(module).__name__} is not supported; '
                    'expected open_clip LayerScale or nn.Identity')


def _check_tower(visual: nn.Module) -> None:
    if not isinstance(visual, VisionTransformer):
        raise TypeError(f'decompose_image: a {type(visual).__name__} image tower; the '
                        "decomposition is written for open_clip's VisionTransformer (the "
                        "'openclip' family), not timm towers (EVA02, SigLIP)")
    if getattr(visual, 'attn_pool', None) is not None or getattr(visual, 'proj', None) is None:
        raise TypeError('decompose_image: the image tower must pool its tokens and project '
                        'them (no attentional pooler, proj set)')
    if getattr(visual, 'pool_type', 'tok') not in ('tok', 'avg'):
        raise TypeError(f"decompose_image: pool_type={visual.pool_type!r}; expected 'tok' "
                        "([CLS], as released) or 'avg' (mean of the patch tokens)")


def pooling_weights(visual: nn.Module, final: Tensor) -> tuple[Tensor, Tensor]:
    """How each token's residual stream enters the image embedding through ln_post.

    With ln_post's actual statistics fixed, the embedding is (γ ⊙ (Σ_q w_q x_q − m) + β)·P
    over the final tokens x_q. [CLS] pooling: w = 1/σ_cls on [CLS], m = μ_cls/σ_cls (the
    released case); ``'avg'`` pooling with ln_post per token: w_q = 1/(N σ_q) on patches,
    m = Σ w_q μ_q; with ``final_ln_after_pool``: the statistics of the pooled token.

    Args:
        visual: the open_clip image tower.
        final: (B, T, D) tokens leaving the last block.

    Returns:
        w (B, T) and m (B,).
    """
    ln = visual.ln_post
    weights = torch.zeros_like(final[..., 0])  # (B, T)
    if visual.pool_type == 'tok':
        weights[:, 0] = 1.0
    else:
        weights[:, NUM_PREFIX_TOKENS:] = 1.0 / (final.shape[1] - NUM_PREFIX_TOKENS)
    if visual.pool_type == 'avg' and getattr(visual, 'final_ln_after_pool', False):
        pooled = (weights[..., None] * final).sum(1)  # (B, D)
        std = torch.sqrt(pooled.var(-1, unbiased=False) + ln.eps)  # (B,)
        return weights / std[:, None], pooled.mean(-1) / std
    std = torch.sqrt(final.var(-1, unbiased=False) + ln.eps)  # (B, T)
    weights = weights / std
    return weights, (weights * final.mean(-1)).sum(1)


def project_terms(summed: Tensor, share: float, offset: Tensor, ln: nn.LayerNorm,
                  proj: Tensor, norm: Tensor) -> Tensor:
    """Residual-stream terms, already summed over tokens with :func:`pooling_weights`, through
    the linearised ln_post, proj and 1/‖r‖.

    Each term c gets (γ ⊙ (c − share·m) + share·β)·P/‖r‖, so that terms whose shares sum to 1
    sum to the embedding over ‖r‖ (prs_hook.py ``_normalize_attentions_spatial``@49f70f3:
    for [CLS], c = u/σ and m = μ/σ give its (γ ⊙ (u − share·μ)/σ + share·β)·P).

    Args:
        summed: (B, ..., D) terms Σ_q w_q u_q.
        share: the part of m and β each term carries.
        offset: (B,) m of :func:`pooling_weights`.
        ln: ln_post. proj: (D, E). norm: (B,) ‖r‖.

    Returns:
        (B, ..., E) terms in the joint space.
    """
    shape = (-1,) + (1,) * (summed.ndim - 1)
    out = (ln.weight * (summed - share * offset.view(shape)) + share * ln.bias) @ proj
    return out / norm.view(shape)  # (B, ..., E)


def decompose_image(backbone: nn.Module, images: Tensor, *, keep_terms: bool = False
                    ) -> Decomposition:
    """Record every direct contribution to the image embedding.

    A head's term for source token t is Σ_q w_q a_{q→t} · W_O^h (W_V^h ln_1(x_t) + b_V^h),
    plus the out-projection bias split evenly over (1+N)·H terms (prs_hook.py@49f70f3), times
    ls_1's gamma; q runs over the pooled tokens ([CLS] alone for CLIP's pooling) with the
    weights of :func:`pooling_weights`.

    Two passes: open_clip's own forward gives ln_post's statistics, then the blocks run again
    and each term is projected as soon as it is made. The residual stream is advanced by
    open_clip's attention and MLP, so the attention terms are checked against an independent
    computation.

    Args:
        backbone: a :class:`~denseclip.models.backbones.CLIPViT` (``embed``, ``blocks``,
            ``visual``).
        images: (B, 3, H, W) CLIP-normalised, H and W divisible by the patch size.
        keep_terms: also return the full (B, L, 1+N, H, E) tensor (the released layout);
            otherwise only the sums the segmenter and TextSpan need are accumulated and
            nothing larger than (B, 1+N, D) or (B, H, T_q, 1+N) is made per layer.

    Returns:
        The :class:`Decomposition`.
    """
    visual = backbone.visual
    _check_tower(visual)
    x, grid = backbone.embed(images)  # (B, T, D), T = 1+N
    B, T, D = x.shape
    L, H = len(backbone.blocks), backbone.blocks[0].attn.num_heads
    final = visual.transformer(x)  # (B, T, D) open_clip's own blocks
    embedding = visual._pool(final)[0] @ visual.proj  # (B, E) open_clip's pooling and ln_post
    norm = embedding.norm(dim=-1)
    weights, offset = pooling_weights(visual, final)  # (B, T), (B,)
    queries = weights[0].nonzero()[:, 0]  # the pooled tokens (same for every image)
    w_q = weights[:, queries]  # (B, T_q)
    total = weights.sum(1)  # (B,) each query's bias, mean and beta enter with its weight
    n = 2 * L + 1  # prs_hook.py len_intermediates: L attention layers, L+1 MLP-like terms
    ln, proj = visual.ln_post, visual.proj
    args = (offset, ln, proj, norm)
    mlps = [torch.einsum('bq,bqd->bd', w_q, x[:, queries])]
    heads = x.new_empty(B, L, H, D)
    tokens = x.new_zeros(B, T, D)
    terms = x.new_empty(B, L, T, H, proj.shape[1]) if keep_terms else None
    for layer, block in enumerate(backbone.blocks):
        check_block(block)
        attn = block.attn
        q, k, v = block_qkv(block, x)  # (B, H, T, hd)
        probs = scaled_scores(q[:, :, queries], k).softmax(-1)  # (B, H, T_q, T)
        weighted = torch.einsum('bq,bhqt->bht', w_q, probs)[..., None] * v  # (B, H, T, hd)
        w_o = attn.out_proj.weight.reshape(D, H, -1)  # (D, H, hd)
        gamma = _layer_scale(block.ls_1, D, x)  # (D,)
        bias = total[:, None] * attn.out_proj.bias  # (B, D)
        tokens += gamma * (torch.einsum('bhtc,dhc->btd', weighted, w_o)
                           + bias[:, None] / T)  # (B, T, D)
        heads[:, layer] = gamma * (torch.einsum('bhc,dhc->bhd', weighted.sum(2), w_o)
                                   + bias[:, None] / H)  # (B, H, D)
        if terms is not None:
            raw = gamma * (torch.einsum('bhtc,dhc->bthd', weighted, w_o)
                           + bias[:, None, None] / (T * H))  # (B, T, H, D)
            terms[:, layer] = project_terms(raw, 1 / (n * T * H), *args)
        mid = x + block.ls_1(block.attention(q_x=block.ln_1(x)))  # open_clip's attention
        mlp = block.ls_2(block.mlp(block.ln_2(mid)))  # (B, T, D)
        x = mid + mlp
        mlps.append(torch.einsum('bq,bqd->bd', w_q, mlp[:, queries]))
    return Decomposition(
        mlps=project_terms(torch.stack(mlps, 1), 1 / n, *args),
        heads=project_terms(heads, 1 / (n * H), *args),
        tokens=project_terms(tokens, L / (n * T), *args),
        terms=terms, embedding=embedding, grid=grid)


# --------------------------------------------------------------------------------- TextSpan
def text_span(data: Tensor, text_features: Tensor, texts: Sequence[str], iters: int,
              rank: int) -> tuple[Tensor, list[str]]:
    """TextSpan: a greedy text basis for one head's outputs (Algorithm 1;
    compute_complete_text_set.py ``replace_with_iterative_removal``@49f70f3).

    The texts are projected onto the span of the top-``rank`` right singular vectors of the
    (uncentred) outputs. Each step picks the text whose projection of the centred outputs has
    the largest (unbiased) standard deviation, removes that direction from the outputs and from
    every text, and adds the outputs' component along it to the reconstruction.

    Args:
        data: (M, E) one head's outputs on M images.
        text_features: (K, E) the text pool's embeddings.
        texts: the K texts of the pool.
        iters: number of texts to choose (``texts_per_head``).
        rank: rank of the output space (``w_ov_rank``).

    Returns:
        The (M, E) reconstruction (mean output plus the chosen components) and the chosen
        texts in order.
    """
    if data.ndim != 2 or text_features.ndim != 2 or data.shape[1] != text_features.shape[1]:
        raise ValueError(f'text_span: data {tuple(data.shape)} and text_features '
                         f'{tuple(text_features.shape)} must be (M, E) and (K, E)')
    if len(texts) != text_features.shape[0]:
        raise ValueError(f'text_span: {len(texts)} texts for {text_features.shape[0]} '
                         'text features')
    if not 1 <= iters <= len(texts) or rank < 1:
        raise ValueError(f'text_span: iters={iters} must be in [1, {len(texts)}], rank={rank} '
                         '>= 1')
    data, text = data.double(), text_features.double()
    basis = torch.linalg.svd(data, full_matrices=False)[2][:rank]  # (r, E)
    # Projection onto the row space: Vᵀ (V Vᵀ)^-1 V as released (V has orthonormal rows).
    text = text @ (basis.T @ torch.linalg.inv(basis @ basis.T) @ basis)  # (K, E)
    mean = data.mean(0, keepdim=True)
    data = data - mean
    reconstruct = mean.expand_as(data).clone()
    chosen = []
    for _ in range(iters):
        top = int((data @ text.T).std(0).argmax())
        chosen.append(texts[top])
        direction = text[top]
        sq_norm = direction @ direction
        component = (data @ direction / sq_norm)[:, None] * direction  # (M, E)
        reconstruct += component
        data = data - component
        text = text - (text @ direction / sq_norm)[:, None] * direction
    return reconstruct.to(text_features.dtype), chosen


def text_span_heads(heads: Tensor, text_features: Tensor, texts: Sequence[str], *,
                    num_last_layers: int = 8, iters: int = 10, rank: int = 80
                    ) -> tuple[Tensor, dict[tuple[int, int], list[str]]]:
    """TextSpan on every head of the last layers, the others mean-ablated
    (compute_complete_text_set.py ``main``@49f70f3).

    Args:
        heads: (M, L, H, E) per-head outputs on M images (:attr:`Decomposition.heads`).
        text_features, texts, iters, rank: as :func:`text_span`.
        num_last_layers: the layers described; earlier ones are replaced by their mean.

    Returns:
        The (M, L, H, E) ablated-and-reconstructed heads (add ``mlps.sum(1)`` and sum over
        layers and heads for the embedding whose accuracy the paper reports), and the texts
        chosen per ``(layer, head)``.
    """
    if heads.ndim != 4:
        raise ValueError(f'text_span_heads: heads {tuple(heads.shape)}; expected (M, L, H, E)')
    L = heads.shape[1]
    if not 0 <= num_last_layers <= L:
        raise ValueError(f'text_span_heads: num_last_layers={num_last_layers}, expected 0-{L}')
    out = heads.clone()
    out[:, :L - num_last_layers] = heads[:, :L - num_last_layers].mean(0, keepdim=True)
    described = {}
    for layer in range(L - num_last_layers, L):
        for head in range(heads.shape[2]):
            out[:, layer, head], described[layer, head] = text_span(
                heads[:, layer, head], text_features, texts, iters, rank)
    return out, described


# --------------------------------------------------------------------------------- segmenter
def patch_scores(tokens: Tensor, embedding: Tensor, classifier: Tensor, grid: tuple[int, int]
                 ) -> Tensor:
    """Score each patch's summed attention terms against the predicted class, relative to the
    mean over classes (compute_segmentations.py ``eval_batch``@49f70f3).

    Args:
        tokens: (B, 1+N, E) :attr:`Decomposition.tokens`.
        embedding: (B, E) the image embedding (its argmax class is the image's class).
        classifier: (K, E) class text embeddings.
        grid: (h, w), N = h*w.

    Returns:
        (B, h, w) scores ⟨M_i, t_ĉ⟩ − mean_c ⟨M_i, t_c⟩.
    """
    chosen = (embedding @ classifier.T).argmax(1)  # (B,)
    heat = tokens[:, NUM_PREFIX_TOKENS:] @ classifier.T  # (B, N, K)
    score = heat.gather(2, chosen.view(-1, 1, 1).expand(-1, heat.shape[1], 1))[..., 0]
    score = score - heat.mean(2)  # (B, N)
    return score.reshape(-1, *grid)  # (B, h, w)


def postprocess_map(scores: Tensor, patch_size: int) -> Tensor:
    """The released post-processing of one image's patch scores (``eval_batch``@49f70f3):
    bilinear upsampling by the patch size, negatives clipped, min-max normalised.

    Args:
        scores: (h, w) :func:`patch_scores` of one image.
        patch_size: the upsampling factor.

    Returns:
        (h·p, w·p) map in [0, 1]; NaN everywhere if it is constant after clipping (0/0, as
        released; :func:`binarise_map` and the metric turn NaN into 0).
    """
    res = F.interpolate(scores[None, None].float(), scale_factor=patch_size, mode='bilinear')
    res = res[0, 0].clamp(min=0)  # (H, W); torch.clip(Res, 0, Res.max())
    return (res - res.min()) / (res.max() - res.min())


def binarise_map(res: Tensor) -> tuple[Tensor, Tensor]:
    """Foreground where the map exceeds its mean (released threshold), and the two-channel
    score map [1 − map, map] its mAP is computed on, NaN set to 0 as released.

    Args:
        res: (H, W) :func:`postprocess_map`.

    Returns:
        labels (H, W) int64 (1 foreground), scores (2, H, W) float32.
    """
    labels = (res > res.mean()).long()  # NaN compares False: all background
    scores = torch.nan_to_num(torch.stack([1 - res, res]), nan=0.0)
    return labels, scores


def read_class_names(names: str | os.PathLike | Sequence[str]) -> list[str]:
    """Class names from a file (one a line, blank lines skipped) or a list of strings."""
    if isinstance(names, (str, os.PathLike)):
        path = Path(names)
        if not path.is_file():
            raise FileNotFoundError(f'TextSpanSegmentor: class_names={str(names)!r} does not '
                                    'exist; give a file with one class name a line, or a list')
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    elif not all(isinstance(n, str) for n in names):
        raise TypeError(f'TextSpanSegmentor: class_names must be a file or a list of strings, '
                        f'got {names!r}')
    if len(names) < 2:
        raise ValueError(f'TextSpanSegmentor: class_names has {len(names)} class(es); the score '
                         'is relative to the mean over classes, give at least 2')
    return list(names)


@MODELS.register_module()
class TextSpanSegmentor(BaseSegmentor):
    """TextSpan's zero-shot foreground segmenter (ImageNet-Segmentation protocol).

    ``pred_sem_seg`` is 1 where the normalised map exceeds its mean, ``seg_logits`` the
    two-channel [background, foreground] map that mAP is computed on; both at the input size.

    Args:
        backbone: a ``CLIPViT`` config (its ``dense`` is unused: every block runs unchanged).
        class_names: the classes the image's class is picked from (ImageNet's 1000 in the
            paper): a file with one name a line, or a list. Repeated names are kept as
            repeated rows (the released ImageNet list has two 'missile's and two
            'sunglasses'), so the mean over classes is the released one.
        templates: prompt template set name or list (80 OpenAI ImageNet templates as released).
        data_preprocessor: defaults to CLIP's mean/std with BGR->RGB.
    """

    def __init__(self, backbone: dict, class_names: str | os.PathLike | Sequence[str],
                 templates: str | Sequence[str] = 'openai_imagenet',
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='mmseg.SegDataPreProcessor', mean=list(CLIP_MEAN),
                                     std=list(CLIP_STD), bgr_to_rgb=True)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if not hasattr(self.backbone, 'blocks'):
            raise TypeError(f'TextSpanSegmentor: backbone {backbone.get("type")!r} is not a '
                            "ViT; use type='CLIPViT'")
        self.class_names = read_class_names(class_names)
        unique = list(dict.fromkeys(self.class_names))
        encoder = OpenCLIPTextEncoder(clip=self.backbone.clip, source=self.backbone.source)
        classifier = build_text_classifier(encoder, None, Vocabulary.from_list(unique),
                                           templates, model_id=self.backbone.source.identity)
        rows = torch.tensor([unique.index(n) for n in self.class_names])
        # (K, E) unit rows; a buffer so that it follows the model's device
        self.register_buffer('class_embeddings', classifier.embeddings[rows], persistent=False)

    @property
    def num_classes(self) -> int:
        """Background and foreground."""
        return 2

    def score_maps(self, inputs: Tensor) -> Tensor:
        """(B, H, W) normalised maps of a batch (NaN where a map is constant)."""
        dec = decompose_image(self.backbone, inputs)
        scores = patch_scores(dec.tokens, dec.embedding, self.class_embeddings, dec.grid)
        return torch.stack([postprocess_map(s, self.backbone.patch_size) for s in scores])

    @torch.inference_mode()
    def predict(self, inputs: Tensor, data_samples: Sequence[SegDataSample] | None = None
                ) -> list[SegDataSample]:
        """Segment a batch into background (0) and foreground (1) at the input size."""
        results = []
        for i, res in enumerate(self.score_maps(inputs)):
            labels, scores = binarise_map(res)
            sample = data_samples[i] if data_samples is not None else SegDataSample()
            sample.set_data(dict(seg_logits=PixelData(data=scores),
                                 pred_sem_seg=PixelData(data=labels[None])))
            results.append(sample)
        return results

    def _forward(self, inputs: Tensor, data_samples=None) -> Tensor:
        """(B, 1, H, W) normalised maps (mmseg ``mode='tensor'``)."""
        return self.score_maps(inputs)[:, None]

    def encode_decode(self, inputs: Tensor, batch_img_metas: list[dict]) -> Tensor:
        """(B, 2, H, W) [background, foreground] scores at the input size."""
        return torch.stack([binarise_map(res)[1] for res in self.score_maps(inputs)])

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """(B, 1+N, E) per-token attention sums (:attr:`Decomposition.tokens`)."""
        return decompose_image(self.backbone, inputs).tokens

    def loss(self, inputs: Tensor, data_samples: Sequence[SegDataSample]) -> dict:
        raise RuntimeError('TextSpanSegmentor is training-free and has no loss')


__all__ = ['Decomposition', 'TextSpanSegmentor', 'binarise_map', 'decompose_image',
           'patch_scores', 'pooling_weights', 'project_terms', 'postprocess_map', 'text_span',
           'text_span_heads']
