# TextSpan's zero-shot segmenter, OpenCLIP ViT-L-14 laion2b_s32b_b82k on ImageNet-Segmentation
# (reference notes §11(a): the paper's other models).
_base_ = [
    '../_base_/models/textspan_segmenter.py',
    '../_base_/datasets/imagenet_seg.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone=dict(model='ViT-L-14', pretrained='laion2b_s32b_b82k'))
