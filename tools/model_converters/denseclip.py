"""Convert a released DenseCLIP segmentation checkpoint (mmseg 0.x) into denseclip's layout.

    python tools/model_converters/denseclip.py denseclip_fpn_res50.pth denseclip_r50_ade20k.pth
    python tools/test.py configs/denseclip/denseclip_r50_ade20k-512x512.py \\
        --checkpoint denseclip_r50_ade20k.pth

Released keys (raoyongming/DenseCLIP@5eda47f segmentation/denseclip/denseclip.py ``DenseCLIP``)
map to :class:`~denseclip.models.segmentors.OpenVocabEncoderDecoder` with a ``DenseCLIPHead``
by an explicit table (:data:`RULES`); every key must match one rule, and the result loads
strictly (``tools/test.py --checkpoint`` checks every key and shape).
"""
from __future__ import annotations

import os
import sys

import torch

# Run as a script, this folder is sys.path[0] and its denseclip.py would shadow the package.
sys.path = [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(__file__)]
from denseclip.engine.checkpoint import convert_checkpoint_cli, rename_keys  # noqa: E402

# (released key pattern, ours): the first pattern that matches the whole key renames it. The
# image tower is open_clip's ``visual`` (same names below it); DenseCLIP's pyramid (fpn1..fpn4)
# stays on the backbone; the text encoder keeps its names; the segmentor-level contexts go to
# the prompt learner and the decoder's parts into the head.
RULES: tuple[tuple[str, str | None], ...] = (
    (r'backbone\.(fpn.+)', r'backbone.\1'),
    (r'backbone\.(.+)', r'backbone.visual.\1'),
    (r'(text_encoder\..+)', r'\1'),
    (r'contexts', 'prompt.contexts'),
    (r'gamma', 'decode_head.gamma'),
    (r'((context_decoder|neck)\..+)', r'decode_head.\1'),
    (r'decode_head\.(.+)', r'decode_head.decode_head.\1'),
)


def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a released state dict; raises KeyError listing keys no rule covers."""
    return rename_keys(state, RULES, 'DenseCLIP',
                       'a DenseCLIP segmentation checkpoint (mmseg 0.x)')


def main(argv: list[str] | None = None) -> int:
    return convert_checkpoint_cli(argv, convert, __doc__.split('\n')[0])


if __name__ == '__main__':
    sys.exit(main())
