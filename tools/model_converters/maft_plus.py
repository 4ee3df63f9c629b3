"""Convert a released MAFT+ checkpoint (detectron2, ``maftp_b.pth`` / ``maftp_l.pth``) into
denseclip's layout.

    python tools/model_converters/maft_plus.py maftp_b.pth maftp_b_converted.pth
    python tools/test.py configs/maft_plus/maft-plus_convnext-b_coco-stuff171_test-ade20k-150.py \\
        --checkpoint maftp_b_converted.pth

Released keys (jiaosiyu1999/MAFT-Plus@fd12806 ``MAFT_Plus``: ``backbone`` / ``backbone_t`` =
``clip.py`` ``CLIP`` with ``clip_model`` an open_clip ConvNeXt CLIP, ``sem_seg_head`` =
``FCCLIPHead`` with Mask2Former's detectron2 ``MSDeformAttnPixelDecoder`` and FC-CLIP's
``MultiScaleMaskedTransformerDecoder``, ``cdt``, ``void_embedding``) map to
:class:`~denseclip.models.segmentors.OpenVocabEncoderDecoder` with a ``MAFTPlusHead`` (mmdet's
Mask2Former parts) by the explicit table :data:`RULES`; every key must match one rule, and the
result loads strictly into the model of the MAFT+ configs (``tools/test.py --checkpoint`` checks
every key and shape). Dropped: ``backbone_t``'s text tower and temperature (``backbone_t`` only
encodes images), ``criterion.empty_weight`` (the class weights, set by ``loss_cls``) and
open_clip's ``attn_mask`` buffer where an old version saved it.
"""
from __future__ import annotations

import os
import sys

import torch

# Run as a script, this folder is sys.path[0] and its denseclip.py would shadow the package.
sys.path = [p for p in sys.path if os.path.abspath(p or '.') != os.path.dirname(__file__)]
from denseclip.engine.checkpoint import convert_checkpoint_cli, rename_keys  # noqa: E402

CLIP_TEXT = (r'(transformer\..+|token_embedding\..+|positional_embedding|ln_final\..+|'
             r'text_projection)')
PIX = r'sem_seg_head\.pixel_decoder\.'
DEC = r'sem_seg_head\.predictor\.'
H = 'decode_head.'
P = H + 'pixel_decoder.'
T = H + 'transformer_decoder.layers.'
MLP3 = {'0': '0', '1': '2', '2': '4'}  # detectron2 MLP.layers.i -> Sequential(Linear, ReLU)
# (released key pattern, ours): the first pattern that matches the whole key renames it; None
# drops the key.
RULES: tuple[tuple[str, str | None], ...] = (
    (r'criterion\.empty_weight', None),
    (r'backbone(_t)?\.clip_model\.attn_mask', None),
    (r'backbone_t\.clip_model\.visual\.(.+)', H + r'backbone_t.visual.\1'),
    (r'backbone_t\.clip_model\.(' + CLIP_TEXT + r'|logit_scale)', None),
    (r'backbone\.clip_model\.visual\.(.+)', r'backbone.visual.\1'),
    (r'backbone\.clip_model\.logit_scale', H + 'clip_logit_scale'),
    (r'backbone\.clip_model\.' + CLIP_TEXT, r'text_encoder.\1'),
    (r'void_embedding\.weight', H + 'void_embedding.weight'),
    (r'cdt\.cross_atten\.multihead_attn\.(.+)', H + r'cdt.attn.\1'),
    (r'cdt\.cross_atten\.norm\.(.+)', H + r'cdt.norm.\1'),
    (r'cdt\.cross_atten\.MLP\.(.+)', H + r'cdt.proj.\1'),
    # Mask2Former's pixel decoder (detectron2) -> mmdet's MSDeformAttnPixelDecoder
    (PIX + r'input_proj\.(\d+)\.0\.(.+)', P + r'input_convs.\1.conv.\2'),
    (PIX + r'input_proj\.(\d+)\.1\.(.+)', P + r'input_convs.\1.gn.\2'),
    (PIX + r'transformer\.level_embed', P + 'level_encoding.weight'),
    (PIX + r'transformer\.encoder\.layers\.(\d+)\.self_attn\.(.+)',
     P + r'encoder.layers.\1.self_attn.\2'),
    (PIX + r'transformer\.encoder\.layers\.(\d+)\.norm1\.(.+)',
     P + r'encoder.layers.\1.norms.0.\2'),
    (PIX + r'transformer\.encoder\.layers\.(\d+)\.norm2\.(.+)',
     P + r'encoder.layers.\1.norms.1.\2'),
    (PIX + r'transformer\.encoder\.layers\.(\d+)\.linear1\.(.+)',
     P + r'encoder.layers.\1.ffn.layers.0.0.\2'),
    (PIX + r'transformer\.encoder\.layers\.(\d+)\.linear2\.(.+)',
     P + r'encoder.layers.\1.ffn.layers.1.\2'),
    (PIX + r'mask_features\.(.+)', P + r'mask_feature.\1'),
    # adapter_{i+1} / layer_{i+1}: the lateral / output convs of level i (stride 4 first; the
    # release builds them in that order and uses them reversed) = mmdet's lateral_convs.{i} /
    # output_convs.{i}; Conv2d(norm=GN) keeps its norm as a child, ConvModule as ``gn``.
    *((PIX + rf'{old}_{i + 1}\.(weight|bias)', P + rf'{new}.{i}.conv.\1')
      for i in range(3) for old, new in (('adapter', 'lateral_convs'), ('layer', 'output_convs'))),
    *((PIX + rf'{old}_{i + 1}\.norm\.(.+)', P + rf'{new}.{i}.gn.\1')
      for i in range(3) for old, new in (('adapter', 'lateral_convs'), ('layer', 'output_convs'))),
    # FC-CLIP's transformer decoder -> mmdet's Mask2FormerTransformerDecoder (cross-attention,
    # self-attention, FFN, each post-norm: norms.0, norms.1, norms.2)
    (DEC + r'transformer_cross_attention_layers\.(\d+)\.multihead_attn\.(.+)',
     T + r'\1.cross_attn.attn.\2'),
    (DEC + r'transformer_cross_attention_layers\.(\d+)\.norm\.(.+)', T + r'\1.norms.0.\2'),
    (DEC + r'transformer_self_attention_layers\.(\d+)\.self_attn\.(.+)',
     T + r'\1.self_attn.attn.\2'),
    (DEC + r'transformer_self_attention_layers\.(\d+)\.norm\.(.+)', T + r'\1.norms.1.\2'),
    (DEC + r'transformer_ffn_layers\.(\d+)\.linear1\.(.+)', T + r'\1.ffn.layers.0.0.\2'),
    (DEC + r'transformer_ffn_layers\.(\d+)\.linear2\.(.+)', T + r'\1.ffn.layers.1.\2'),
    (DEC + r'transformer_ffn_layers\.(\d+)\.norm\.(.+)', T + r'\1.norms.2.\2'),
    (DEC + r'decoder_norm\.(.+)', H + r'transformer_decoder.post_norm.\1'),
    (DEC + r'(query_feat|query_embed|level_embed)\.weight', H + r'\1.weight'),
    (DEC + r'input_proj\.(\d+)\.(.+)', H + r'decoder_input_projs.\1.\2'),
    *((DEC + rf'mask_embed\.layers\.{i}\.(.+)', H + rf'mask_embed.{j}.\1')
      for i, j in MLP3.items()),
    *((DEC + rf'class_embed\.layers\.{i}\.(.+)', H + rf'cls_embed.{j}.\1')
      for i, j in MLP3.items()),
    (DEC + r'_mask_pooling_proj\.(.+)', H + r'mask_pooling_proj.\1'),
    (DEC + r'logit_scale', H + 'logit_scale'),
)


def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a released state dict; raises KeyError listing keys no rule covers."""
    return rename_keys(state, RULES, 'MAFT+', 'a MAFT+ maftp_b.pth / maftp_l.pth (detectron2)')


def main(argv: list[str] | None = None) -> int:
    return convert_checkpoint_cli(argv, convert, __doc__.split('\n')[0])


if __name__ == '__main__':
    sys.exit(main())
