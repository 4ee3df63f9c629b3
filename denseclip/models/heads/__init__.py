"""Trained decode heads, one file per paper; the protocol is :class:`OpenVocabHead`."""
from .base import OpenVocabHead
from .denseclip import ContextDecoder, DenseCLIPHead, IdentityHead

__all__ = ['OpenVocabHead', 'ContextDecoder', 'DenseCLIPHead', 'IdentityHead']
