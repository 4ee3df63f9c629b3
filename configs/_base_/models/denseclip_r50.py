# DenseCLIP, RN50, Semantic FPN (raoyongming/DenseCLIP@5eda47f segmentation/configs/
# denseclip_fpn_res50_512x512_80k.py over _base_/models/denseclip_r50.py; trained_methods.md
# §1.1-§1.3). The harness: a leaf sets the vocabulary and what its backbone or dataset changes.
num_classes = 150  # ADE20K; the FPN input and the FPNHead are sized by it
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.771, 116.746, 104.094],  # IMG_MEAN: CLIP's mean x 255
    std=[68.501, 66.632, 70.323],  # IMG_VAR: CLIP's std x 255
    bgr_to_rgb=True,  # to_rgb=True
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))  # Pad(size=crop_size, pad_val=0, seg_pad_val=255)
model = dict(
    type='OpenVocabEncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='CLIPResNetWithAttention',
        model='RN50',  # layers=[3, 4, 6, 3], output_dim=1024
        pretrained='openai',  # pretrained/RN50.pt
        input_resolution=512),
    text_encoder=dict(context_length=13),  # CLIPTextContextEncoder context_length=13
    # context_length=5 (SOS, <= 3 name tokens, EOS) + 8 learned tokens, one set
    prompt=dict(type='ContextPrompt', num_sets=1, num_tokens=8, name_length=3),
    # the CLASSES of mmseg's ADE20KDataset, which DenseCLIP tokenizes (denseclip.py), byte for
    # byte MaskCLIP's list
    vocabulary='{{fileDirname}}/../../../denseclip/datasets/vocabularies/maskclip/cls_ade20k.txt',
    decode_head=dict(
        type='DenseCLIPHead',
        context_decoder=dict(
            type='ContextDecoder',
            transformer_width=256,
            transformer_heads=4,
            transformer_layers=3,
            visual_dim=1024,
            dropout=0.1),
        gamma_init=1e-4,  # self.gamma = ones(text_dim) * 1e-4
        score_concat_index=3,  # into x4
        tau=0.07,
        neck=dict(
            type='FPN', in_channels=[256, 512, 1024, 2048 + num_classes], out_channels=256,
            num_outs=4),
        decode_head=dict(
            type='FPNHead',
            in_channels=[256, 256, 256, 256],
            in_index=[0, 1, 2, 3],
            feature_strides=[4, 8, 16, 32],
            channels=256,
            dropout_ratio=0.1,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
        identity_head=dict(
            type='IdentityHead',
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4))),
    # test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)); softmax of the
    # merged logits
    slide_crop=512,
    slide_stride=341,
    logit_scale=1.0)
