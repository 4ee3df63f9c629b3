# DenseCLIP (Rao et al., CVPR 2022), CLIP ViT-B/16, Semantic FPN, ADE20K-150, 640x640, 80k
# iterations at batch 4 x 8 GPUs (raoyongming/DenseCLIP@5eda47f
# denseclip_fpn_vit-b_640x640_80k.py):
#   tools/dist_train.sh configs/denseclip/denseclip_vit-b16_ade20k-640x640.py 8
# Published mIoU: 50.6 single-scale, 51.3 multi-scale [README] (trained_methods.md §1.7).
_base_ = [
    '../_base_/models/denseclip_vit-b16.py',
    '../_base_/datasets/ade20k_denseclip-640x640.py',
    '../_base_/schedules/denseclip_80k.py',
]
