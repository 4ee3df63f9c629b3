"""An mmengine Runner whose checkpoints survive a kill and resume under ``weights_only=True``.

Two overrides, no change to mmengine's globals:

* :meth:`AtomicCheckpointRunner.save_checkpoint` lets mmengine write ``<name>.tmp`` and renames
  it to ``<name>`` with ``os.replace`` (POSIX-atomic), so ``iter_N.pth`` is either absent or
  complete. mmengine's CheckpointHook then rewrites ``last_checkpoint`` in place; if the run dies
  during that tiny write, :func:`~denseclip.engine.checkpoint.latest_checkpoint` falls back to
  the newest complete ``iter_N.pth``.
* :meth:`load_checkpoint` (used by ``resume`` and ``load_from``) runs mmengine's ``torch.load``
  inside :func:`~denseclip.engine.checkpoint.mmengine_safe_globals`.

It also registers :class:`~denseclip.engine.hooks.RNGStateHook`, so that a resumed run continues
exactly, dropout included, and runs a config's ``CheckpointHook`` as
:class:`~denseclip.engine.hooks.SafeCheckpointHook`, which deletes an outdated checkpoint only
after the next one is complete (mmengine deletes it first: a kill during that save left none).
"""
from __future__ import annotations

import os
from collections.abc import Callable

from mmengine.dist import is_main_process, master_only
from mmengine.fileio import get_file_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner
from denseclip.registry import RUNNERS

from .checkpoint import (TMP_SUFFIX, atomic_replace, latest_checkpoint, mmengine_safe_globals,
                         remove_partial_files)
from .hooks import RNGStateHook, SafeCheckpointHook


@RUNNERS.register_module()
class AtomicCheckpointRunner(Runner):
    """mmengine's ``Runner`` with atomic checkpoint files and allow-listed resume.

    Select it with ``runner_type = 'AtomicCheckpointRunner'`` in a config (``tools/train.py``
    uses it when the config names no runner).
    """

    def register_hooks(self, default_hooks: dict | None = None,
                       custom_hooks: list | None = None) -> None:
        """mmengine's hooks, the checkpoint hook as :class:`SafeCheckpointHook`, plus
        :class:`RNGStateHook` unless the config names one."""
        default_hooks = dict(default_hooks or {})
        # mmengine's default when a config names none: CheckpointHook(interval=1)
        checkpoint = default_hooks.get('checkpoint', dict(type='CheckpointHook', interval=1))
        if isinstance(checkpoint, dict) and checkpoint.get('type') in ('CheckpointHook',
                                                                       CheckpointHook):
            default_hooks['checkpoint'] = dict(checkpoint, type=SafeCheckpointHook)
        super().register_hooks(default_hooks, custom_hooks)
        if not any(isinstance(hook, RNGStateHook) for hook in self.hooks):
            self.register_hook(RNGStateHook())

    @master_only
    def save_checkpoint(self, out_dir: str, filename: str, file_client_args: dict | None = None,
                        save_optimizer: bool = True, save_param_scheduler: bool = True,
                        meta: dict | None = None, by_epoch: bool = True,
                        backend_args: dict | None = None) -> None:
        """``Runner.save_checkpoint`` into ``filename + '.tmp'``, then an atomic rename."""
        if not isinstance(get_file_backend(out_dir, backend_args=backend_args), LocalBackend):
            raise ValueError(f'AtomicCheckpointRunner: out_dir={out_dir!r} is not a local '
                             'directory; atomic renames need a local file system')
        if file_client_args is not None:
            raise ValueError('AtomicCheckpointRunner: file_client_args is deprecated in '
                             'mmengine; pass backend_args (local backend) instead')
        super().save_checkpoint(out_dir, filename + TMP_SUFFIX, save_optimizer=save_optimizer,
                                save_param_scheduler=save_param_scheduler, meta=meta,
                                by_epoch=by_epoch, backend_args=backend_args)
        atomic_replace(os.path.join(out_dir, filename + TMP_SUFFIX),
                       os.path.join(out_dir, filename))

    def load_checkpoint(self, filename: str, map_location: str | Callable = 'cpu',
                        strict: bool = False,
                        revise_keys: tuple = ((r'^module.', ''),)) -> dict:
        """``Runner.load_checkpoint`` with mmengine's classes allow-listed for torch.load."""
        with mmengine_safe_globals():
            return super().load_checkpoint(filename, map_location=map_location, strict=strict,
                                           revise_keys=revise_keys)

    def load_or_resume(self) -> None:
        """Auto-resume (``resume=True``, no ``load_from``) from :func:`latest_checkpoint`, after
        deleting the ``.tmp`` file a killed save may have left in ``work_dir``."""
        if self._resume and not self._has_loaded:
            if is_main_process():
                for path in remove_partial_files(self.work_dir):
                    self.logger.warning(f'removed {path}, left by an interrupted save')
            if self._load_from is None:
                self._load_from = latest_checkpoint(self.work_dir)
                if self._load_from is None:
                    self.logger.info(f'no checkpoint in {self.work_dir} to resume from; '
                                     'training from scratch')
                    self._resume = False
        super().load_or_resume()
