"""denseclip: CLIP as a dense predictor, as MMEngine / MMSegmentation modules.

Importing the package installs the ``mmcv._ext`` shim (see ``denseclip.compat``) before any
OpenMMLab import, then registers every module, so ``custom_imports=dict(imports=['denseclip'])``
works in any mmseg or mmdet config.
"""
from . import compat
from .version import __version__

compat.install()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (registration)
from .apis import OpenVocabSegmenter, build_dense_clip  # noqa: E402

__all__ = ['__version__', 'build_dense_clip', 'OpenVocabSegmenter']
from .apis import PhraseLocalizer  # noqa: E402
__all__ += ['PhraseLocalizer']
