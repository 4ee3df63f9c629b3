"""A pure-PyTorch ``mmcv._ext`` for mmcv-lite, so that ``mmcv.ops`` (and mmseg, mmdet) import.

mmcv-lite 2.1.0 ships mmcv's Python ops without the compiled extension; every op module runs
``ext_loader.load_ext('_ext', [names])`` at import, which imports ``mmcv._ext`` and asserts that
each listed name is an attribute (``mmcv/utils/ext_loader.py``). ``install()`` registers a module
whose attributes are the torchvision / PyTorch ops of ``ops.py`` and ``deform_ops.py``; any other
name resolves to a function that raises ``NotImplementedError`` when called, never on import.
"""
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import types
from typing import Any, Callable

from . import deform_ops, ops

logger = logging.getLogger(__name__)

EXT_NAME = 'mmcv._ext'
# Every name in ops.__all__ and deform_ops.__all__ is the op mmcv's Python wrappers call by it.
IMPLEMENTED = {name: getattr(mod, name) for mod in (ops, deform_ops) for name in mod.__all__}


def _missing_op(name: str) -> Callable[..., Any]:
    """A stand-in for compiled op ``name`` that raises when called."""

    def missing(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"{EXT_NAME}.{name} is not available: mmcv's compiled ops are not installed and "
            'denseclip.compat provides no PyTorch fallback for it; install a compiled mmcv '
            '(mmcv>=2.0,<2.2) to use it'
        )

    missing.__name__ = missing.__qualname__ = name
    return missing


def _module_getattr(name: str) -> Callable[..., Any]:
    """Module ``__getattr__`` (PEP 562): every public name is an op, private ones are absent."""
    if name.startswith('_'):  # keep dunder probes (__path__, __file__, ...) failing normally
        raise AttributeError(f'module {EXT_NAME!r} has no attribute {name!r}')
    return _missing_op(name)


class _Loader(importlib.abc.Loader):
    """Loader named by the module's spec: mmengine's ``mmcv_full_available()`` asks
    ``pkgutil.find_loader('mmcv._ext')`` and, given one, lets DCN and SyncBN code use mmcv.ops."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return build_ext_module()

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: ``build_ext_module`` fills the module."""


def build_ext_module() -> types.ModuleType:
    """A new ``mmcv._ext`` module object holding ``IMPLEMENTED`` and raising stubs."""
    module = types.ModuleType(EXT_NAME, __doc__)
    module.__spec__ = importlib.machinery.ModuleSpec(EXT_NAME, _Loader(), origin=__file__)
    module.__loader__ = module.__spec__.loader
    module.__dict__.update(IMPLEMENTED)
    module.__getattr__ = _module_getattr
    return module


def _compiled_ext_loads() -> bool:
    """Whether a compiled ``mmcv._ext`` exists and imports; a broken one is logged and skipped."""
    try:
        if importlib.util.find_spec(EXT_NAME) is None:
            return False
        importlib.import_module(EXT_NAME)
    except ImportError as err:  # e.g. built against another PyTorch: 'undefined symbol'
        logger.warning('%s failed to import (%s); using denseclip.compat ops', EXT_NAME, err)
        return False
    return True


def install() -> None:
    """Register the fallback ``mmcv._ext`` unless a compiled one is importable.

    Must run before ``mmcv.ops`` is first imported. Safe to call more than once. Ops not in
    ``IMPLEMENTED`` raise ``NotImplementedError`` naming the op when called.
    """
    if EXT_NAME in sys.modules:  # ours from an earlier call, or a compiled one: leave it
        return
    if importlib.util.find_spec('mmcv') is None:
        logger.debug('mmcv is not installed; nothing to patch')
        return
    if _compiled_ext_loads():
        logger.debug('using the compiled %s', EXT_NAME)
        return
    import mmcv

    module = build_ext_module()
    sys.modules[EXT_NAME] = module
    mmcv._ext = module
    logger.debug('installed denseclip.compat %s (%d ops)', EXT_NAME, len(IMPLEMENTED))
