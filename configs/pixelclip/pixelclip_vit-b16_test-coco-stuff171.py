# PixelCLIP (vit-b16) tested on COCO-Stuff-171 val (eval.sh: TEST_CLASS_JSON datasets/coco.json,
# imagenet_select templates, the whole image at CLIP_RESOLUTION after resizing the short
# side to 640). Use a trained or converted checkpoint:
#   tools/test.py configs/pixelclip/pixelclip_vit-b16_test-coco-stuff171.py --checkpoint CKPT
_base_ = [
    '../_base_/models/pixelclip_vit-b16.py',
    '../_base_/datasets/coco-stuff171.py',
    '../_base_/default_runtime.py',
]
model = dict(
    test_vocabulary='{{fileDirname}}/../../denseclip/datasets/vocabularies/catseg/'
    'cls_coco_stuff.txt')
test_dataloader = dict(dataset=dict(pipeline={{_base_.pixelclip_test_pipeline}}))
