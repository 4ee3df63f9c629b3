"""Running OpenMMLab (mmcv-lite, mmseg, mmdet) on current PyTorch without a compiled mmcv.

``install()`` puts a pure-PyTorch ``mmcv._ext`` in ``sys.modules`` when mmcv's compiled
extension is absent; a compiled mmcv is left untouched.
"""
from .mmcv_ext import install

__all__ = ['install']
