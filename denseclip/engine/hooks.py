"""Hooks for denseclip training runs."""
from __future__ import annotations

import os

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
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
