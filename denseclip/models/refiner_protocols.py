"""The three refiner slots of the segmentors, as declared protocols (base classes).

A refiner subclasses the one its slot calls, and the segmentor checks it at build time:

* :class:`FeatureRefiner` (``feature_refiner=``): each window batch's dense features before
  the cosine, ``forward(feats, dense, backbone) -> feats``; with ``window_softmax``, its
  :meth:`~FeatureRefiner.override_background` edits the window probabilities (CLIP-DINOiser).
* :class:`PatchRefiner` (``patch_refiner=``): the patch-grid cosine logits,
  ``forward(logits, dense, backbone) -> logits`` (at the grid or the window's size);
  :meth:`~PatchRefiner.set_classifier` is called whenever the vocabulary changes (CLIPtrase,
  MaskCLIP+'s KSPD, ResCLIP's SFR).
* :class:`ScoreRefiner` (``refiner=``): the merged scores at the image size,
  ``forward(image, scores) -> scores`` (PAMR).

``dense`` is the backbone's :class:`~denseclip.models.backbones.DenseOutput` of the same
forward pass: tokens, grid, input and the last block's [CLS] (``cls_feats``), so no refiner
reruns the trunk (ResCLIP's SFR reruns the last block alone, with its feedback: that is the
method).
"""
from __future__ import annotations

from torch import Tensor, nn

__all__ = ['FeatureRefiner', 'PatchRefiner', 'ScoreRefiner', 'check_refiner']


class FeatureRefiner(nn.Module):
    """``forward(feats, dense, backbone)``: (b, E, h, w) features -> refined features."""

    def override_background(self, probs: Tensor, dense, backbone) -> Tensor:
        """Edit a window batch's (b, Q, H, W) probabilities; by default they are kept."""
        return probs


class PatchRefiner(nn.Module):
    """``forward(logits, dense, backbone)``: (b, Q, h, w) patch logits -> refined logits."""

    def set_classifier(self, classifier) -> None:
        """Take the segmentor's :class:`~denseclip.models.text.TextClassifier`; by default it
        is not needed."""


class ScoreRefiner(nn.Module):
    """``forward(image, scores)``: (1, Q, H, W) merged scores -> refined scores."""


def check_refiner(refiner: nn.Module | None, protocol: type, slot: str) -> nn.Module | None:
    """``refiner``, or TypeError naming the slot and the protocol it must follow."""
    if refiner is not None and not isinstance(refiner, protocol):
        raise TypeError(f'{slot}: {type(refiner).__name__} is not a {protocol.__name__}; the '
                        f'{slot} slot takes {protocol.__name__} subclasses '
                        '(denseclip/models/refiner_protocols.py)')
    return refiner
