"""Convert a released DenseCLIP detection checkpoint (mmdet 2.17) into denseclip's layout.

    python tools/model_converters/denseclip_det.py retinanet_denseclip_r50.pth ours.pth
    python $(python -c "import mmdet, os; print(os.path.dirname(mmdet.__file__))")/.mim/tools/\\
test.py configs/denseclip_det/retinanet_denseclip-r50_fpn_1x_coco.py ours.pth

Released keys (raoyongming/DenseCLIP@5eda47f detection/denseclip/denseclip.py
``DenseCLIP_RetinaNet``, ``DenseCLIP_MaskRCNN``) map to
:class:`~denseclip.models.detectors.DenseCLIPRetinaNet` / ``DenseCLIPMaskRCNN``. The backbone,
text encoder and learned contexts follow the segmentation converter's rules (imported from
``denseclip.py`` next to this file, not restated); the context decoder, γ and mmdet's neck and
heads keep their names (mmdet 3.x kept 2.x's module names). Every key must match a rule.
"""
from __future__ import annotations

import importlib.util
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
# Run as a script, this folder is sys.path[0] and its denseclip.py would shadow the package.
sys.path = [p for p in sys.path if os.path.abspath(p or '.') != HERE]
from denseclip.engine.checkpoint import convert_checkpoint_cli, rename_keys  # noqa: E402


def _segmentation_converter():
    spec = importlib.util.spec_from_file_location('denseclip_seg_converter',
                                                  os.path.join(HERE, 'denseclip.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The segmentation rules for everything outside its decode head (backbone, text encoder,
# contexts -> prompt.contexts), then the detector's own modules, unchanged.
RULES: tuple[tuple[str, str | None], ...] = (
    *(rule for rule in _segmentation_converter().RULES
      if rule[1] is None or not rule[1].startswith('decode_head')),
    (r'gamma', 'gamma'),
    (r'((context_decoder|neck|bbox_head|rpn_head|roi_head)\..+)', r'\1'),
)


def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a released state dict; raises KeyError listing keys no rule covers."""
    return rename_keys(state, RULES, 'DenseCLIP detection',
                       'a DenseCLIP RetinaNet / Mask R-CNN checkpoint (mmdet 2.x)')


def main(argv: list[str] | None = None) -> int:
    return convert_checkpoint_cli(argv, convert, __doc__.split('\n')[0])


if __name__ == '__main__':
    sys.exit(main())
