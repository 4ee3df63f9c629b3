"""Training machinery: a runner with atomic, ``weights_only``-loadable checkpoints, hooks, and
the data and frozen teachers of self-supervised heads (CLIP-DINOiser)."""
from . import data, hooks, optim, runner, teachers  # noqa: F401  (registration)
from .checkpoint import latest_checkpoint, load_checkpoint_strict, mmengine_safe_globals

__all__ = ['latest_checkpoint', 'load_checkpoint_strict', 'mmengine_safe_globals']
