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

import argparse
import os
import sys
import tempfile

import torch

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


def read_released(path: str) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of an mmseg 0.x checkpoint, read with ``weights_only=True``."""
    from denseclip.engine import mmengine_safe_globals  # numpy scalars in mmcv's meta

    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such checkpoint file')
    try:
        with mmengine_safe_globals():
            ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # corrupt, truncated or not a torch file
        raise ValueError(f'{path}: cannot read a checkpoint ({type(err).__name__}: {err})') \
            from None
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise ValueError(f'{path}: expected a state dict of tensors (or {{"state_dict": ...}})')
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


def save_atomic(obj: dict, path: str) -> None:
    """torch.save into a temporary file beside ``path``, then rename: never a partial file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix='.tmp')
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='released DenseCLIP checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint in denseclip layout (.pth)')
    args = parser.parse_args(argv)
    try:
        state = convert(read_released(args.src))
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f'error: {err.args[0] if err.args else err}', file=sys.stderr)
        return 1
    save_atomic({'state_dict': state, 'meta': {'converted_from': os.path.abspath(args.src)}},
                args.dst)
    print(f'{args.dst}: {len(state)} tensors')
    return 0


if __name__ == '__main__':
    sys.exit(main())
