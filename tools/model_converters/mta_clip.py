"""Convert a released MTA-CLIP checkpoint (mmseg 1.x) into denseclip's layout.

    python tools/model_converters/mta_clip.py mta_clip_r50.pth mta-clip_r50_ade20k.pth
    python tools/test.py configs/mta_clip/mta-clip_r50_ade20k-512x512.py \\
        --checkpoint mta-clip_r50_ade20k.pth

Released keys (anurag-198/MTA_CLIP@a62deff ``mta_clip/mta_clip.py`` ``MTA_CLIP``,
``mask2former_head_det.py``) map to :class:`~denseclip.models.segmentors.OpenVocabEncoderDecoder`
with an ``MTACLIPHead`` by an explicit table (:data:`RULES`); the backbone, text encoder and
contexts are DenseCLIP's. Parameters the released forward never reads are dropped by name;
every other key must match one rule, and the result loads strictly
(``tools/test.py --checkpoint`` checks every key and shape).
"""
from __future__ import annotations

import os
import sys

import torch

# Run as a script, this folder is sys.path[0] and its denseclip.py would shadow the package.
sys.path = [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(__file__)]
from denseclip.engine.checkpoint import convert_checkpoint_cli, rename_keys  # noqa: E402

# (released key pattern, ours): the first pattern that matches the whole key renames it; None
# drops a parameter the released forward never reads (MTA_CLIP.gamma: no context decoder is
# built; the head's lang_embed and visual_emb_proj).
RULES: tuple[tuple[str, str | None], ...] = (
    (r'gamma', None),
    (r'decode_head\.(lang_embed|visual_emb_proj)\..+', None),
    (r'backbone\.(.+)', r'backbone.visual.\1'),  # CLIPResNetWithAttention: open_clip's names
    (r'(text_encoder\..+)', r'\1'),
    (r'contexts', 'prompt.contexts'),  # (n_contexts, 8, W)
    (r'decode_head\.query_embed_decoder\.(.+)', r'decode_head.query_embed.\1'),
    (r'(decode_head\..+)', r'\1'),  # mmdet's Mask2Former parts and the text layers
)


def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a released state dict; raises KeyError listing keys no rule covers."""
    return rename_keys(state, RULES, 'MTA-CLIP', 'an MTA-CLIP checkpoint (anurag-198/MTA_CLIP)')


def main(argv: list[str] | None = None) -> int:
    return convert_checkpoint_cli(argv, convert, __doc__.split('\n')[0])


if __name__ == '__main__':
    sys.exit(main())
