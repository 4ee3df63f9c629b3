# PixelCLIP trained from the toy CLIP on the toy world's class-agnostic segments, no labels, on the
# CPU; evaluated training-free on all 10 toy classes (the toy CLIP's own dense features before,
# the student's after): mIoU 61.12 before, 61.81 after 200 iterations (released x0.01 rates):
#   python tools/train.py configs/pixelclip/pixelclip_toy-vit-p16_toy-masks.py
#   python tools/test.py configs/pixelclip/pixelclip_toy-vit-p16_toy-masks.py \
#       --checkpoint work_dirs/pixelclip_toy-vit-p16_toy-masks/iter_200.pth
_base_ = [
    '../_base_/models/pixelclip_toy-vit-p16.py',
    '../_base_/datasets/toy_masks.py',
    '../_base_/schedules/pixelclip_toy-200.py',
]
