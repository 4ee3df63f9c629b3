"""Convert a released PixelCLIP checkpoint (detectron2 ``model_final.pth``) into denseclip's layout.

    python tools/model_converters/pixelclip.py model_final.pth pixelclip_vit-b16_sa1b.pth
    python tools/test.py configs/pixelclip/pixelclip_vit-b16_test-ade20k-150.py \\
        --checkpoint pixelclip_vit-b16_sa1b.pth

Released keys (cvlab-kaist/PixelCLIP@42f5c9c ``PixelCLIP``: ``sem_seg_head.predictor.clip_model``
= the OpenAI / open_clip CLIP, ``sem_seg_head.predictor.prompt_tokens`` = the learned class
names, ``teacher_encoder`` = the EMA copy whose text transformer is removed, ``head`` = the
ConvHead, ``dino`` = the torch.hub DINO of ``MODEL.DINO`` runs) map to
:class:`~denseclip.models.heads.pixelclip.PixelCLIPSegmentor` by the explicit table
:data:`RULES`; every key must match one rule, and the result loads strictly into the model of the
PixelCLIP configs. Dropped: ``logit_scale`` (unused), the teacher's leftover text parts (the
teacher encodes images only) and DINO (a frozen mask source, rebuilt from its own weights and
never part of our state dict). ViT-B/16 and ConvNeXt-B share the table: both towers keep
open_clip's names under ``visual.``.
"""
from __future__ import annotations

import os
import sys

import torch

# Run as a script, this folder is sys.path[0] and its denseclip.py would shadow the package.
sys.path = [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(__file__)]
from denseclip.engine.checkpoint import convert_checkpoint_cli, rename_keys  # noqa: E402

CLIP = r'sem_seg_head\.predictor\.clip_model\.'
TEXT = r'(token_embedding\..+|positional_embedding|transformer\..+|ln_final\..+|text_projection)'
# (released key pattern, ours): the first pattern that matches the whole key renames it; None
# drops the key.
RULES: tuple[tuple[str, str | None], ...] = (
    (CLIP + r'logit_scale', None),
    (CLIP + r'visual\.(.+)', r'backbone.visual.\1'),
    (CLIP + TEXT, r'text_encoder.\1'),
    (r'sem_seg_head\.predictor\.prompt_tokens', 'cluster_prompt.names'),
    (r'teacher_encoder\.visual\.(.+)', r'teacher.visual.\1'),
    (r'teacher_encoder\.(logit_scale|' + TEXT[1:], None),
    (r'head\.(.+)', r'decode_head.conv_head.\1'),
    (r'dino\..+', None),
)


def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a released state dict; raises KeyError listing keys no rule covers."""
    return rename_keys(state, RULES, 'PixelCLIP', 'a PixelCLIP model_final.pth (NeurIPS 2024)')


def main(argv: list[str] | None = None) -> int:
    return convert_checkpoint_cli(argv, convert, __doc__.split('\n')[0])


if __name__ == '__main__':
    sys.exit(main())
