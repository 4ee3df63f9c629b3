# TextSpan's zero-shot segmenter, OpenCLIP ViT-B-16 laion2b_s34b_b88k on ImageNet-Segmentation
# (reference notes §11(a): the paper's other models).
_base_ = [
    '../_base_/models/textspan_segmenter.py',
    '../_base_/datasets/imagenet_seg.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone=dict(model='ViT-B-16', pretrained='laion2b_s34b_b88k'))
