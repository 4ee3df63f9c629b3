"""Convert a released DenseCLIP segmentation checkpoint (mmseg 0.x) into denseclip's layout.

    python tools/model_converters/denseclip.py denseclip_fpn_res50.pth denseclip_r50_ade20k.pth
    python tools/test.py configs/denseclip/denseclip_r50_ade20k-512x512.py \\
        --checkpoint denseclip_r50_ade20k.pth

Released keys (raoyongming/DenseCLIP@5eda47f segmentation/denseclip/denseclip.py ``DenseCLIP``)
map to :class:`~denseclip.models.segmentors.OpenVocabEncoderDecoder` with a ``DenseCLIPHead``
by an explicit table (:data:`RENAMES`); every key must match one rule, and the result loads
strictly (``tools/test.py --checkpoint`` checks every key and shape).
"""
from __future__ import annotations

import os
import sys

import torch

# Run as a script, this folder is sys.path[0] and its denseclip.py would shadow the package.
sys.path = [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(__file__)]
from denseclip.engine.checkpoint import convert_checkpoint_cli  # noqa: E402

# (released prefix, ours): the first rule whose prefix starts a key renames it. The image
# tower is open_clip's ``visual`` (same names below it); DenseCLIP's pyramid (fpn1..fpn4)
# stays on the backbone; the text encoder keeps its names; the segmentor-level contexts go
# to the prompt learner and the decoder's parts into the head.
RENAMES: tuple[tuple[str, str], ...] = (
    ('backbone.fpn', 'backbone.fpn'),
    ('backbone.', 'backbone.visual.'),
    ('text_encoder.', 'text_encoder.'),
    ('contexts', 'prompt.contexts'),
    ('gamma', 'decode_head.gamma'),
    ('context_decoder.', 'decode_head.context_decoder.'),
    ('neck.', 'decode_head.neck.'),
    ('decode_head.', 'decode_head.decode_head.'),
)


def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a released state dict; raises KeyError listing keys no rule covers."""
    out, unknown = {}, []
    for key, value in state.items():
        for old, new in RENAMES:
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f'{len(unknown)} keys of no released DenseCLIP module: {unknown[:10]}; '
                       'is this a DenseCLIP segmentation checkpoint (mmseg 0.x)?')
    return out


def main(argv: list[str] | None = None) -> int:
    return convert_checkpoint_cli(argv, convert, __doc__.split('\n')[0])


if __name__ == '__main__':
    sys.exit(main())
