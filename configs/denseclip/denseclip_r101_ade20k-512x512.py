# DenseCLIP (Rao et al., CVPR 2022), CLIP RN101, Semantic FPN, ADE20K-150, 512x512, 80k
# iterations at batch 4 x 8 GPUs (raoyongming/DenseCLIP@5eda47f
# denseclip_fpn_res101_512x512_80k.py):
#   tools/dist_train.sh configs/denseclip/denseclip_r101_ade20k-512x512.py 8
# Published mIoU: 45.1 single-scale, 46.5 multi-scale [README] (trained_methods.md §1.7).
_base_ = [
    '../_base_/models/denseclip_r50.py',
    '../_base_/datasets/ade20k_denseclip-512x512.py',
    '../_base_/schedules/denseclip_80k.py',
]
model = dict(
    backbone=dict(model='RN101', pretrained='openai'),  # layers=[3, 4, 23, 3], output_dim=512
    decode_head=dict(context_decoder=dict(visual_dim=512)))  # text_dim=512
