# DenseCLIP Mask R-CNN, CLIP RN50 (raoyongming/DenseCLIP@5eda47f detection/configs/
# mask_rcnn_denseclip_r50_fpn_1x_coco.py over _base_/models/mask_rcnn_r50_fpn.py;
# trained_methods.md §1.4): mmdet's Mask R-CNN R50-FPN with the DenseCLIP backbone, text side
# and score map. The auxiliary loss still rasterises boxes, not masks.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py', './denseclip_det_coco-classes.py']
num_classes = 80
model = dict(
    type='DenseCLIPMaskRCNN',
    data_preprocessor=dict(
        mean=[122.771, 116.746, 104.094],  # IMAGE_MEAN: CLIP's mean x 255
        std=[68.501, 66.632, 70.323]),  # IMAGE_VAR: CLIP's std x 255
    backbone=dict(
        _delete_=True,  # mmdet's ImageNet ResNet-50 and its init_cfg
        type='CLIPResNetWithAttention',
        model='RN50',  # layers=[3, 4, 6, 3], output_dim=1024
        pretrained='openai',  # pretrained='pretrained/RN50.pt'
        input_resolution=1344,  # a 42 x 42 positional table ...
        pos_embed='crop'),  # ... cropped to the input's grid (detection AttentionPool2d)
    vocabulary={{_base_.coco_classes}},  # train.py: cfg.model.class_names = dataset.CLASSES
    text_encoder=dict(context_length=13),  # CLIPTextContextEncoder(context_length=13)
    # context_length=5 (SOS, <= 3 name tokens, EOS) + 8 learned tokens
    prompt=dict(type='ContextPrompt', num_sets=1, num_tokens=8, name_length=3),
    context_decoder=dict(
        type='ContextDecoder',
        transformer_width=256,
        transformer_heads=4,
        transformer_layers=3,
        visual_dim=1024,
        dropout=0.1),
    tau=0.07,
    gamma_init=1e-4,  # self.gamma = ones(text_dim) * 1e-4
    score_concat_index=3,  # x[3] = cat([x[3], score_maps[3]])
    aux_loss_weight=1.0,  # seg_loss=True, unweighted ('loss_aux_seg')
    neck=dict(in_channels=[256, 512, 1024, 2048 + num_classes]),  # num_outs=5
    roi_head=dict(
        bbox_head=dict(num_classes=num_classes),
        mask_head=dict(num_classes=num_classes)))
custom_hooks = [dict(type='DetVocabularyCheckHook')]  # vocabulary == the datasets' classes
