# PixelCLIP (vit-b16) tested on ADE20K-150 val (eval.sh: TEST_CLASS_JSON datasets/ade150.json,
# imagenet_select templates, the whole image at CLIP_RESOLUTION after resizing the short
# side to 640). Use a trained or converted checkpoint:
#   tools/test.py configs/pixelclip/pixelclip_vit-b16_test-ade20k-150.py --checkpoint CKPT
_base_ = [
    '../_base_/models/pixelclip_vit-b16.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    test_vocabulary='{{fileDirname}}/../../denseclip/datasets/vocabularies/catseg/'
    'cls_ade150.txt')
test_dataloader = dict(dataset=dict(pipeline={{_base_.pixelclip_test_pipeline}}))
