"""``--launcher pytorch`` for tools/train.py and tools/test.py (``dist_train.sh`` /
``dist_test.sh``, torchrun): NCCL on CUDA through mmengine; without CUDA, gloo on the CPU.

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally, which raises on a
machine without a GPU, and its default DDP wrapper passes ``device_ids=[LOCAL_RANK]``, which DDP
rejects for CPU modules. So without CUDA :func:`setup_launcher` initialises the process group
itself (the Runner then skips ``init_dist``) and gives the wrapper ``device_ids=None``.
"""
from __future__ import annotations

import gc

import torch
from mmengine.config import Config

__all__ = ['setup_launcher', 'finish_launcher']


def set_dist_backend(cfg: Config, backend: str) -> None:
    """``env_cfg.dist_cfg.backend = backend``, keeping the rest of ``env_cfg``."""
    env_cfg = dict(cfg.get('env_cfg') or {})
    env_cfg['dist_cfg'] = dict(env_cfg.get('dist_cfg') or {}, backend=backend)
    cfg.env_cfg = env_cfg


def setup_launcher(cfg: Config, launcher: str) -> None:
    """Set ``cfg`` for ``launcher`` (``'none'`` or ``'pytorch'``) and, on the CPU, start the
    gloo process group (call before building the Runner)."""
    cfg.launcher = launcher
    if launcher != 'pytorch':
        return
    if torch.cuda.is_available():
        set_dist_backend(cfg, 'nccl')
        return
    set_dist_backend(cfg, 'gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper.setdefault('device_ids', None)
    wrapper.setdefault('broadcast_buffers', False)
    cfg.model_wrapper_cfg = wrapper
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend='gloo')


def finish_launcher() -> None:
    """Tear the process group down at the end of a run; drop the Runner first (``del runner``).

    Exiting with a live gloo group, or destroying it while the DDP wrapper still exists, aborts
    one rank now and then at interpreter exit ("terminate called without an active exception";
    torch 2.15, CPU, 2-6 runs in 15).
    """
    if not torch.distributed.is_initialized():
        return
    gc.collect()  # the DDP wrapper of the Runner just dropped
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
