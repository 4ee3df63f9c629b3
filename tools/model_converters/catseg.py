"""Convert a released CAT-Seg checkpoint (detectron2 ``model_final.pth``) into denseclip's layout.

    python tools/model_converters/catseg.py model_final_base.pth catseg_vit-b16.pth
    python tools/test.py configs/catseg/catseg_vit-b16_coco-stuff171_test-ade20k-150.py \\
        --checkpoint catseg_vit-b16.pth

Released keys (KU-CVLAB/CAT-Seg@6d3a188 ``CATSeg``: ``sem_seg_head.predictor.clip_model`` with
q/k/v split as in model_vpt.py, ``sem_seg_head.predictor.transformer`` = ``Aggregator``,
``upsample1``/``upsample2``) map to :class:`~denseclip.models.segmentors.OpenVocabEncoderDecoder`
with a ``CATSegHead`` by the explicit table :data:`RULES`; every key must match one rule, and
the result loads strictly into the model of the CAT-Seg configs (``tools/test.py --checkpoint``
checks every key and shape). ``logit_scale`` (unused by segmentation) and the Swin blocks'
``attn_mask`` buffers (recomputed for any grid) are dropped.
"""
from __future__ import annotations

import os
import sys

import torch

# Run as a script, this folder is sys.path[0] and its denseclip.py would shadow the package.
sys.path = [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(__file__)]
from denseclip.engine.checkpoint import convert_checkpoint_cli, rename_keys  # noqa: E402

CLIP = r'sem_seg_head\.predictor\.clip_model\.'
AGG = r'sem_seg_head\.predictor\.transformer\.'
HEAD = 'decode_head.'
# DoubleConv's Sequential(conv, GN, ReLU, conv, GN, ReLU) indices -> two ConvModule(conv, gn).
DOUBLE_CONV = {'0': '0.conv', '1': '0.gn', '3': '1.conv', '4': '1.gn'}
# (released key pattern, ours): the first pattern that matches the whole key renames it; None
# drops the key. The CLIP towers keep open_clip's (= OpenAI's) names.
RULES: tuple[tuple[str, str | None], ...] = (
    (CLIP + r'logit_scale', None),
    (CLIP + r'visual\.(.+)', r'backbone.visual.\1'),
    (CLIP + r'(token_embedding\..+|positional_embedding|transformer\..+|ln_final\..+|'
     r'text_projection)', r'text_encoder.\1'),
    (r'upsample1\.(.+)', HEAD + r'upsample.0.\1'),
    (r'upsample2\.(.+)', HEAD + r'upsample.1.\1'),
    (AGG + r'conv1\.(.+)', HEAD + r'embed.\1'),
    (AGG + r'guidance_projection\.0\.(.+)', HEAD + r'appearance_guidance.conv.\1'),
    (AGG + r'text_guidance_projection\.0\.(.+)', HEAD + r'text_guidance.0.\1'),
    (AGG + r'decoder_guidance_projection\.(\d)\.0\.(.+)', HEAD + r'decoder_guidance.\1.conv.\2'),
    (AGG + r'layers\.\d+\.swin_block\.block_\d\.attn_mask', None),
    (AGG + r'layers\.(\d+)\.swin_block\.(.+)', HEAD + r'layers.\1.spatial.\2'),
    (AGG + r'layers\.(\d+)\.attention\.attention\.(.+)', HEAD + r'layers.\1.classwise.\2'),
    (AGG + r'layers\.(\d+)\.attention\.MLP\.(.+)', HEAD + r'layers.\1.classwise.mlp.\2'),
    (AGG + r'layers\.(\d+)\.attention\.(.+)', HEAD + r'layers.\1.classwise.\2'),
    *((AGG + rf'decoder{i + 1}\.up\.(.+)', HEAD + rf'decoder.{i}.up.\1') for i in range(2)),
    *((AGG + rf'decoder{i + 1}\.conv\.double_conv\.{old}\.(.+)',
       HEAD + rf'decoder.{i}.conv.{new}.\1') for i in range(2) for old, new in DOUBLE_CONV.items()),
    (AGG + r'head\.(.+)', HEAD + r'head.\1'),
)


def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a released state dict; raises KeyError listing keys no rule covers."""
    return rename_keys(state, RULES, 'CAT-Seg',
                       'a CAT-Seg model_final.pth (CVPR 2024 release)')


def main(argv: list[str] | None = None) -> int:
    return convert_checkpoint_cli(argv, convert, __doc__.split('\n')[0])


if __name__ == '__main__':
    sys.exit(main())
