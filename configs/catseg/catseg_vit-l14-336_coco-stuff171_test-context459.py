# CAT-Seg (L) trained on COCO-Stuff-171, tested on PASCAL-Context-459 val (5,104 images) with the
# released sliding-window protocol (eval.sh; TEST_CLASS_JSON datasets/pc459.json).
_base_ = [
    '../_base_/models/catseg_vit-l14-336.py',
    '../_base_/datasets/context459.py',
    '../_base_/default_runtime.py',
]
model = dict(
    test_vocabulary='{{fileDirname}}/../../denseclip/datasets/vocabularies/catseg/cls_pc459.txt')
test_dataloader = dict(dataset=dict(pipeline={{_base_.catseg_wide_test_pipeline}}))
