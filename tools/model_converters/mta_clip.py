"""Convert a released MTA-CLIP checkpoint (mmseg 1.x) into denseclip's layout.

    python tools/model_converters/mta_clip.py mta_clip_r50.pth mta-clip_r50_ade20k.pth
    python tools/test.py configs/mta_clip/mta-clip_r50_ade20k-512x512.py \\
        --checkpoint mta-clip_r50_ade20k.pth

Released keys (anurag-198/MTA_CLIP@a62deff ``mta_clip/mta_clip.py`` ``MTA_CLIP``,
``mask2former_head_det.py``) map to :class:`~denseclip.models.segmentors.OpenVocabEncoderDecoder`
with an ``MTACLIPHead`` by an explicit table (:data:`RENAMES`); the backbone, text encoder and
contexts are DenseCLIP's. Parameters the released forward never reads are dropped by name
(:data:`UNUSED`); every other key must match one rule, and the result loads strictly
(``tools/test.py --checkpoint`` checks every key and shape).
"""
from __future__ import annotations

import os
import sys

import torch

# Run as a script, this folder is sys.path[0] and its denseclip.py would shadow the package.
sys.path = [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(__file__)]
from denseclip.engine.checkpoint import convert_checkpoint_cli  # noqa: E402

# (released prefix, ours): the first rule whose prefix starts a key renames it.
RENAMES: tuple[tuple[str, str], ...] = (
    ('backbone.', 'backbone.visual.'),  # CLIPResNetWithAttention: open_clip's names below
    ('text_encoder.', 'text_encoder.'),
    ('contexts', 'prompt.contexts'),  # (n_contexts, 8, W)
    ('decode_head.query_embed_decoder.', 'decode_head.query_embed.'),
    ('decode_head.', 'decode_head.'),  # mmdet's Mask2Former parts and the text layers
)
# Built by the release but never read by its forward: MTA_CLIP.gamma (no context decoder),
# the head's lang_embed and visual_emb_proj.
UNUSED: tuple[str, ...] = ('gamma', 'decode_head.lang_embed.', 'decode_head.visual_emb_proj.')


def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a released state dict; raises KeyError listing keys no rule covers."""
    out, unknown = {}, []
    for key, value in state.items():
        if any(key == u or (u.endswith('.') and key.startswith(u)) for u in UNUSED):
            continue
        for old, new in RENAMES:
            if key.startswith(old):
                out[new + key[len(old):]] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(f'{len(unknown)} keys of no released MTA-CLIP module: {unknown[:10]}; '
                       'is this an MTA-CLIP checkpoint (anurag-198/MTA_CLIP)?')
    return out


def main(argv: list[str] | None = None) -> int:
    return convert_checkpoint_cli(argv, convert, __doc__.split('\n')[0])


if __name__ == '__main__':
    sys.exit(main())
