"""Hooks for denseclip training runs."""
from __future__ import annotations

import os

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper
from denseclip.registry import HOOKS
from safetensors.torch import save_file

from .checkpoint import TMP_SUFFIX, atomic_replace


@HOOKS.register_module()
class ExportWeightsHook(Hook):
    """At the end of training, save one submodule's weights as ``work_dir/<filename>``.

    The file is a plain safetensors state dict keyed as the submodule itself, so the inference
    module loads it directly (e.g. ``CLIPDINOiserRefiner(checkpoint=...)``). Written on the main
    process, atomically.

    Args:
        module: attribute name of the submodule in the trained model (e.g. ``'refiner'``).
        filename: output file name, ``.safetensors``.
    """

    priority = 'VERY_LOW'

    def __init__(self, module: str, filename: str) -> None:
        if not filename.endswith('.safetensors'):
            raise ValueError(f'ExportWeightsHook: filename={filename!r}; expected a '
                             '.safetensors name')
        self.module = module
        self.filename = filename

    def after_run(self, runner) -> None:
        if not is_main_process():
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, self.module):
            raise KeyError(f'ExportWeightsHook: the model {type(model).__name__} has no '
                           f'submodule {self.module!r}')
        state = {k: v.detach().cpu().contiguous()
                 for k, v in getattr(model, self.module).state_dict().items()}
        final = os.path.join(runner.work_dir, self.filename)
        save_file(state, final + TMP_SUFFIX)
        atomic_replace(final + TMP_SUFFIX, final)
        runner.logger.info(f'exported {self.module} weights to {final}')


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Checkpoint torch's random state, so a resumed run draws the same dropout and drop-path
    masks as the run it continues.

    mmengine 0.10.7 reseeds on resume and keeps no random state in checkpoints: the data
    pipeline comes out right (the loop replays the skipped batches), the model's random layers
    do not. The state at the save (after iteration N) is restored just before iteration N + 1
    runs, after the loop has replayed the data. Under DDP the main process's state is saved and
    every rank restores it (ranks share one state unless ``randomness.diff_rank_seed``).
    :class:`~denseclip.engine.runner.AtomicCheckpointRunner` registers it.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending: dict | None = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(cpu=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint.setdefault('meta', {})['torch_rng_state'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._pending = checkpoint.get('meta', {}).get('torch_rng_state')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._pending is None:
            return
        torch.set_rng_state(self._pending['cpu'])
        if 'cuda' in self._pending and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._pending['cuda'])
        self._pending = None


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` that deletes an outdated checkpoint only once the new one
    is complete.

    mmengine 0.10.7 (``_save_checkpoint_with_step``) removes the oldest kept checkpoint before
    it writes the next: with ``max_keep_ckpts=1`` a run killed during that save has no
    checkpoint at all, and ``--resume`` starts from scratch. Here the save runs first (atomic
    with :class:`~denseclip.engine.runner.AtomicCheckpointRunner`), then the outdated files go,
    so at every moment the last complete checkpoint is on disk. Arguments, the kept list and
    what it records for resuming are mmengine's.
    """

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        keep, outdated = self.max_keep_ckpts, None
        # mmengine's bookkeeping, before the save as there (the checkpoint records the list)
        if keep > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == keep:  # a deque of maxlen keep
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        self.max_keep_ckpts = -1  # mmengine's save, without its deletion before it
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        finally:
            self.max_keep_ckpts = keep
        if outdated is not None and is_main_process():
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(outdated))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed saves directories
                self.file_backend.rmtree(path)
