"""Trained decode heads, one file per paper; the protocol is :class:`OpenVocabHead`."""
from .base import OpenVocabHead
from .catseg import CATSegHead, ClassAggregation, SpatialAggregation, linear_attention
from .cost_volume import CostVolume
from .denseclip import ContextDecoder, DenseCLIPHead, IdentityHead
from .maft_plus import ContentDependentTransfer, MAFTPlusHead
from .mta_clip import MTACLIPHead, mask_text_contrastive_loss

__all__ = ['OpenVocabHead', 'CATSegHead', 'ClassAggregation', 'SpatialAggregation',
           'linear_attention', 'CostVolume', 'ContextDecoder', 'DenseCLIPHead', 'IdentityHead',
           'MTACLIPHead', 'mask_text_contrastive_loss', 'MAFTPlusHead', 'ContentDependentTransfer']
from . import pixelclip  # noqa: E402,F401  (PixelCLIP: head, learned names, mask sources, segmentor)
