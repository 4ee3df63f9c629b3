# PixelCLIP (vit-b16) tested on Cityscapes val (eval.sh: TEST_CLASS_JSON
# datasets/cityscapes.json, imagenet_select templates, the whole image at
# CLIP_RESOLUTION after resizing the short side to 640). Use a trained or converted checkpoint:
#   tools/test.py configs/pixelclip/pixelclip_vit-b16_test-cityscapes.py --checkpoint CKPT
_base_ = [
    '../_base_/models/pixelclip_vit-b16.py',
    '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
]
model = dict(test_vocabulary=[
    'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign',
    'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
    'bicycle'
])
test_dataloader = dict(dataset=dict(pipeline={{_base_.pixelclip_test_pipeline}}))
