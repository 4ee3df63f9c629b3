# PixelCLIP (convnext-b) tested on PASCAL VOC-20 val (eval.sh: TEST_CLASS_JSON datasets/voc20.json,
# imagenet_select templates, the whole image at CLIP_RESOLUTION after resizing the short
# side to 640). Use a trained or converted checkpoint:
#   tools/test.py configs/pixelclip/pixelclip_convnext-b_test-voc20.py --checkpoint CKPT
_base_ = [
    '../_base_/models/pixelclip_convnext-b.py',
    '../_base_/datasets/voc20.py',
    '../_base_/default_runtime.py',
]
model = dict(
    test_vocabulary='{{fileDirname}}/../../denseclip/datasets/vocabularies/catseg/'
    'cls_voc20.txt')
test_dataloader = dict(dataset=dict(pipeline={{_base_.pixelclip_test_pipeline}}))
