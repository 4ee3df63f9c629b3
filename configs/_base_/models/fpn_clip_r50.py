# The fpn_clip baseline of DenseCLIP's tables: CLIP RN50 fine-tuned with mmseg's Semantic FPN,
# no text (raoyongming/DenseCLIP@5eda47f segmentation/configs/fpn_clipres50_512x512_80k.py over
# _base_/models/fpn_r50.py). mmseg's own EncoderDecoder with denseclip's CLIP backbone.
num_classes = 150
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.771, 116.746, 104.094],  # CLIP's mean x 255
    std=[68.501, 66.632, 70.323],  # CLIP's std x 255
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))  # Pad(size=crop_size)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='CLIPResNet',
        model='RN50',  # layers=[3, 4, 6, 3]
        pretrained='openai',  # pretrained/RN50.pt
        out_indices=(0, 1, 2, 3)),
    neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=4),
    decode_head=dict(
        type='FPNHead',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=256,  # decode_head=dict(channels=256, ...)
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
