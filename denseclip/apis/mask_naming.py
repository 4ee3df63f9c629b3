"""Name a region with CLIP: pool dense features inside a mask, then zero-shot classify them.

The interactive demo (``demo/app.py``) gets a mask from SAM (or a superpixel) and calls
:func:`name_mask` with the dense features of the same image, computed once per image.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def mask_weights(mask: Tensor, grid: tuple[int, int]) -> Tensor:
    """The fraction of each feature cell a pixel mask covers.

    The mask is resized by area averaging (``F.interpolate(mode='area')``, i.e. adaptive
    average pooling), not nearest: a mask thinner than a patch still gives weight to the
    patches it touches instead of vanishing, and a patch half inside counts half.

    Args:
        mask: (H, W) bool, the region at the image's own size.
        grid: (h, w) of the feature map; the features are taken to cover the whole image.

    Returns:
        (h, w) float32 weights in [0, 1].
    """
    m = mask.to(torch.float32)[None, None]  # (1, 1, H, W)
    return F.interpolate(m, size=grid, mode='area')[0, 0]  # (h, w)


def name_mask(features: Tensor, mask: Tensor, text_embeddings: Tensor, query_to_class: Tensor,
              logit_scale: float, top_k: int = 3) -> list[tuple[int, float]]:
    """The ``top_k`` classes of a masked region and their probabilities.

    Steps: the features are averaged inside the mask (weights from :func:`mask_weights`);
    the average is compared by cosine with each text query; ``softmax(logit_scale * cos)``
    over the Q queries; each class takes the max over its queries (synonyms), as
    ``OpenVocabSegmentor.postprocess`` does per pixel. The raw (unnormalised) features are
    averaged, then the mean is L2-normalised for the cosine.

    Args:
        features: (E, h, w) dense features of the image (``encode_dense`` output, any norm).
        mask: (H, W) bool region at the image's size; at least one pixel must be set.
        text_embeddings: (Q, E) text embeddings of the queries (normalised here).
        query_to_class: (Q,) int64 class index of each query, values in [0, K).
        logit_scale: softmax temperature (the method's ``logit_scale``).
        top_k: how many classes to return (at most K).

    Returns:
        ``[(class_index, probability), ...]``, best first, ``min(top_k, K)`` entries.
    """
    if features.ndim != 3 or mask.ndim != 2 or text_embeddings.ndim != 2:
        raise ValueError(f'name_mask: features {tuple(features.shape)}, mask '
                         f'{tuple(mask.shape)}, text_embeddings {tuple(text_embeddings.shape)}; '
                         'expected (E, h, w), (H, W) and (Q, E)')
    if text_embeddings.shape[1] != features.shape[0]:
        raise ValueError(f'name_mask: features have E={features.shape[0]} channels but the text '
                         f'embeddings E={text_embeddings.shape[1]}; use one CLIP for both')
    if query_to_class.shape != (text_embeddings.shape[0],):
        raise ValueError(f'name_mask: query_to_class {tuple(query_to_class.shape)}; expected '
                         f'({text_embeddings.shape[0]},), one class index per query')
    if mask.dtype != torch.bool:
        raise TypeError(f'name_mask: mask dtype {mask.dtype}; expected torch.bool')
    if not mask.any():
        raise ValueError('name_mask: the mask is empty; select at least one pixel')
    if top_k < 1:
        raise ValueError(f'name_mask: top_k={top_k}; expected >= 1')
    weights = mask_weights(mask.to(features.device), tuple(features.shape[1:]))  # (h, w)
    feats = features.to(torch.float32)
    pooled = torch.einsum('ehw,hw->e', feats, weights) / weights.sum()  # (E,)
    cos = F.normalize(text_embeddings.to(feats), dim=-1) @ F.normalize(pooled, dim=0)  # (Q,)
    probs = torch.softmax(logit_scale * cos, dim=0)  # (Q,)
    num_classes = int(query_to_class.max()) + 1
    index = query_to_class.to(probs.device)
    per_class = probs.new_full((num_classes,), float('-inf'))
    per_class = per_class.scatter_reduce(0, index, probs, reduce='amax')  # (K,)
    scores, classes = per_class.topk(min(top_k, num_classes))
    return [(int(k), float(s)) for k, s in zip(classes, scores, strict=True)]
