# PixelCLIP (vit-b16) tested on PASCAL Context-59 val (eval.sh: TEST_CLASS_JSON
# datasets/pc59.json, imagenet_select templates, the whole image at
# CLIP_RESOLUTION after resizing the short side to 640). Use a trained or converted checkpoint:
#   tools/test.py configs/pixelclip/pixelclip_vit-b16_test-context59.py --checkpoint CKPT
_base_ = [
    '../_base_/models/pixelclip_vit-b16.py',
    '../_base_/datasets/context59.py',
    '../_base_/default_runtime.py',
]
model = dict(
    test_vocabulary='{{fileDirname}}/../../denseclip/datasets/vocabularies/catseg/'
    'cls_pc59.txt')
test_dataloader = dict(dataset=dict(pipeline={{_base_.pixelclip_test_pipeline}}))
