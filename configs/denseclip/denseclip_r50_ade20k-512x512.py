# DenseCLIP (Rao et al., CVPR 2022), CLIP RN50, Semantic FPN, ADE20K-150, 512x512, 80k iterations
# at batch 4 x 8 GPUs (raoyongming/DenseCLIP@5eda47f denseclip_fpn_res50_512x512_80k.py):
#   tools/dist_train.sh configs/denseclip/denseclip_r50_ade20k-512x512.py 8
# Published mIoU: 43.5 single-scale, 44.7 multi-scale [README] (trained_methods.md §1.7).
_base_ = [
    '../_base_/models/denseclip_r50.py',
    '../_base_/datasets/ade20k_denseclip-512x512.py',
    '../_base_/schedules/denseclip_80k.py',
]
