# DenseCLIP, ViT-B/16 at 640, Semantic FPN (raoyongming/DenseCLIP@5eda47f segmentation/configs/
# denseclip_fpn_vit-b_640x640_80k.py; trained_methods.md §1.1-§1.3). The RN50 harness with the
# ViT's backbone, widths and score-map level.
_base_ = ['./denseclip_r50.py']
num_classes = 150
model = dict(
    data_preprocessor=dict(size=(640, 640)),
    backbone=dict(
        _delete_=True,  # another backbone type: none of the ResNet's arguments apply
        type='CLIPVisionTransformer',
        model='ViT-B-16',  # patch_size=16, width=768, layers=12, output_dim=512
        pretrained='openai',  # pretrained/ViT-B-16.pt
        input_resolution=640,
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.1,
        get_embeddings=True,
        norm_cfg={{_base_.norm_cfg}}),  # fpn1's nn.SyncBatchNorm
    decode_head=dict(
        context_decoder=dict(visual_dim=512),  # text_dim=512
        score_concat_index=2,
        neck=dict(in_channels=[768, 768, 768 + num_classes, 768])),
    slide_crop=640,  # test_cfg crop_size=(640, 640)
    slide_stride=426)  # stride=(426, 426)
