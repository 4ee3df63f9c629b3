# Vanilla CLIP in SCLIP's harness (reference notes §2.2-§2.3): CLIP's own last-block attention,
# the baseline of the training-free tables (SCLIP's and NACLIP's "CLIP" rows run this way).
_base_ = ['./sclip_harness.py']
model = dict(backbone=dict(dense=dict(type='VanillaAttention')))
