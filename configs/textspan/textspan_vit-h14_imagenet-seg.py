# TextSpan's zero-shot segmenter, OpenCLIP ViT-H-14 laion2b_s32b_b79k on ImageNet-Segmentation
# (the paper's model; reference notes §11(c): pixAcc ~75.2, mIoU ~54.5, mAP ~81.6).
_base_ = [
    '../_base_/models/textspan_segmenter.py',
    '../_base_/datasets/imagenet_seg.py',
    '../_base_/default_runtime.py',
]
