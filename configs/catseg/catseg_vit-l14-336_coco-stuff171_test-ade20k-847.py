# CAT-Seg (L) trained on COCO-Stuff-171, tested on ADE20K-847 val (2,000 images) with the released
# sliding-window protocol (eval.sh; TEST_CLASS_JSON datasets/ade847.json).
_base_ = [
    '../_base_/models/catseg_vit-l14-336.py',
    '../_base_/datasets/ade20k-847.py',
    '../_base_/default_runtime.py',
]
model = dict(
    test_vocabulary='{{fileDirname}}/../../denseclip/datasets/vocabularies/catseg/cls_ade847.txt')
test_dataloader = dict(dataset=dict(pipeline={{_base_.catseg_wide_test_pipeline}}))
