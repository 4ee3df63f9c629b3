# CAT-Seg (B) trained on COCO-Stuff-171, tested on PASCAL VOC 2012 val with background (PAS-20b)
# with the released sliding-window protocol (eval.sh; TEST_CLASS_JSON datasets/voc20b.json).
_base_ = [
    '../_base_/models/catseg_vit-b16.py',
    '../_base_/datasets/voc21.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # voc20b.json: the 20 classes and 39 names that all mean "background" (the
    # VOCbEvaluator maps every prediction >= 20 to it), here one class with 39 names, first
    # as mmseg's label 0: synonyms=True takes the max over them, as the argmax-then-map does.
    synonyms=True,
    test_vocabulary='{{fileDirname}}/../../denseclip/datasets/vocabularies/catseg/cls_voc20b.txt')
test_dataloader = dict(dataset=dict(pipeline={{_base_.catseg_test_pipeline}}))
