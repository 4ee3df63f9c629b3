"""The pixel-text cost volume of cost-aggregation methods (CAT-Seg, Cho et al., CVPR 2024, eq. 1;
KU-CVLAB/CAT-Seg@6d3a188 model.py ``Aggregator.correlation`` and its ``pad_len`` pruning).

    C(p, t, h, w) = cos(F_hw, T_{t,p})                            (B, P, T, h, w)

With more classes than ``max_classes`` (ADE-847, PASCAL-Context-459), each image keeps the
``max_classes`` classes of highest max_{p,h,w} C and their slice of C (the release recomputes
it on them: the same values); the scores of the others are filled with a constant (-100 in the
released predictor) by :meth:`CostVolume.restore`. Kept classes stay in vocabulary order
(the released ``topk`` is unsorted; every later stage is equivariant to the class order).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from denseclip.registry import MODELS


@MODELS.register_module()
class CostVolume(nn.Module):
    """Cosine cost volume between dense image features and per-prompt class embeddings.

    Args:
        max_classes: classes kept per image (CAT-Seg's ``pad_len`` 256); None keeps all.
        fill: score of the pruned classes in :meth:`restore`.
    """

    def __init__(self, max_classes: int | None = 256, fill: float = -100.0) -> None:
        super().__init__()
        if max_classes is not None and max_classes < 1:
            raise ValueError(f'CostVolume: max_classes={max_classes}; expected >= 1 or None')
        self.max_classes = max_classes
        self.fill = fill

    def forward(self, feats: Tensor, text: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """The cost volume, pruned to ``max_classes`` classes per image.

        Args:
            feats: (B, D, h, w) image features.
            text: (B, T, P, D) or (T, P, D) class embeddings, P prompts per class.

        Returns:
            cost (B, P, T', h, w); the kept classes' unit-norm embeddings (B, T', P, D);
            the kept class indices (B, T'), or None when nothing was pruned (T' = T).
        """
        B = feats.shape[0]
        if text.dim() == 3:
            text = text.unsqueeze(0).expand(B, -1, -1, -1)
        if text.shape[-1] != feats.shape[1]:
            raise ValueError(f'CostVolume: text embeddings {tuple(text.shape)} and image '
                             f'features {tuple(feats.shape)} have different widths')
        feats = F.normalize(feats, dim=1)
        text = F.normalize(text, dim=-1)
        cost = torch.einsum('bchw,btpc->bpthw', feats, text)
        if self.max_classes is None or text.shape[1] <= self.max_classes:
            return cost, text, None
        score = cost.transpose(1, 2).flatten(2).amax(-1)  # (B, T)
        kept = score.topk(self.max_classes, dim=-1).indices.sort(dim=-1).values  # (B, T')
        text = text.gather(1, kept[:, :, None, None].expand(-1, -1, *text.shape[2:]))
        cost = cost.gather(2, kept[:, None, :, None, None].expand(-1, cost.shape[1], -1,
                                                                   *cost.shape[3:]))
        return cost, text, kept

    def restore(self, scores: Tensor, kept: Tensor | None, num_classes: int) -> Tensor:
        """Scatter (B, T', H, W) scores of the kept classes back to (B, T, H, W); the pruned
        classes get ``fill``."""
        if kept is None:
            return scores
        out = scores.new_full((scores.shape[0], num_classes, *scores.shape[2:]), self.fill)
        return out.scatter(1, kept[:, :, None, None].expand_as(scores), scores)

    def extra_repr(self) -> str:
        return f'max_classes={self.max_classes}, fill={self.fill}'
