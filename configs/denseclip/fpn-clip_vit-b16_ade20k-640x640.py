# DenseCLIP's baseline: CLIP ViT-B/16 fine-tuned with Semantic FPN, no text, ADE20K-150,
# 640x640, 80k iterations at batch 4 x 8 GPUs (raoyongming/DenseCLIP@5eda47f
# fpn_clipvit-b_640x640_80k.py):
#   tools/dist_train.sh configs/denseclip/fpn-clip_vit-b16_ade20k-640x640.py 8
# Published mIoU: 49.4 single-scale, 50.3 multi-scale [README] (trained_methods.md §1.7).
_base_ = [
    '../_base_/models/fpn_clip_r50.py',
    '../_base_/datasets/ade20k_denseclip-640x640.py',
    '../_base_/schedules/denseclip_80k.py',
]
model = dict(
    data_preprocessor=dict(size=(640, 640)),
    backbone=dict(
        _delete_=True,  # another backbone type: none of the ResNet's arguments apply
        type='CLIPVisionTransformer',
        model='ViT-B-16',  # patch_size=16, width=768, layers=12
        pretrained='openai',  # pretrained/ViT-B-16.pt
        input_resolution=640,
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.0,  # the baseline config sets none (class default 0.0)
        get_embeddings=False,
        norm_cfg={{_base_.norm_cfg}}),
    neck=dict(in_channels=[768, 768, 768, 768]),
    test_cfg=dict(mode='slide', crop_size=(640, 640), stride=(426, 426)))
