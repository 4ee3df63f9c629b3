# CAT-Seg (L) trained on COCO-Stuff-171, tested on PASCAL VOC 2012 val without background (PAS-20)
# with the released sliding-window protocol (eval.sh; TEST_CLASS_JSON datasets/voc20.json).
_base_ = [
    '../_base_/models/catseg_vit-l14-336.py',
    '../_base_/datasets/voc20.py',
    '../_base_/default_runtime.py',
]
model = dict(
    test_vocabulary='{{fileDirname}}/../../denseclip/datasets/vocabularies/catseg/cls_voc20.txt')
test_dataloader = dict(dataset=dict(pipeline={{_base_.catseg_test_pipeline}}))
