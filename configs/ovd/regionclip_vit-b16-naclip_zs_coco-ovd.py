# Zero-shot COCO OVD with a training-free dense method: OpenAI ViT-B/16 with NACLIP's last
# block, its joint-space map pooled in the proposals of the base-class RPN (RoIAlign 7x7,
# averaged), RegionCLIP's classifier and scoring. Swap model.backbone.dense for any other
# dense method (SCLIPAttention, ClearCLIPAttention, ...).
_base_ = [
    '../_base_/models/regionclip_vit-b16.py',
    '../_base_/datasets/coco_ovd.py',
]
model = dict(vocabulary={{_base_.classes}},
             rpn_checkpoint='work_dirs/rpn_r50-fpn_1x_coco-ovd-base/iter_90000.pth')
train_dataloader = None  # zero-shot: nothing is trained
