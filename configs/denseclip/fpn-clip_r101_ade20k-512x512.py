# DenseCLIP's baseline: CLIP RN101 fine-tuned with Semantic FPN, no text, ADE20K-150, 512x512,
# 80k iterations at batch 4 x 8 GPUs (raoyongming/DenseCLIP@5eda47f fpn_clipres101_512x512_80k.py):
#   tools/dist_train.sh configs/denseclip/fpn-clip_r101_ade20k-512x512.py 8
# Published mIoU: 42.7 single-scale, 44.3 multi-scale [README] (trained_methods.md §1.7).
_base_ = [
    '../_base_/models/fpn_clip_r50.py',
    '../_base_/datasets/ade20k_denseclip-512x512.py',
    '../_base_/schedules/denseclip_80k.py',
]
# Deviation: RN101's own weights; the released config loads pretrained/RN50.pt into the
# RN101 layers (non-strictly, so layer3's extra blocks kept their random init).
model = dict(backbone=dict(model='RN101', pretrained='openai'))  # layers=[3, 4, 23, 3]
