# DenseCLIP's baseline: CLIP RN50 fine-tuned with Semantic FPN, no text, ADE20K-150, 512x512,
# 80k iterations at batch 4 x 8 GPUs (raoyongming/DenseCLIP@5eda47f fpn_clipres50_512x512_80k.py):
#   tools/dist_train.sh configs/denseclip/fpn-clip_r50_ade20k-512x512.py 8
# Published mIoU: 39.6 single-scale, 41.6 multi-scale [README] (trained_methods.md §1.7).
_base_ = [
    '../_base_/models/fpn_clip_r50.py',
    '../_base_/datasets/ade20k_denseclip-512x512.py',
    '../_base_/schedules/denseclip_80k.py',
]
