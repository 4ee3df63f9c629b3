# MAFT+ (L) trained on COCO-Stuff-171, tested on PASCAL Context-59 val (5,105 images): whole images
# at short side 800. Published (README, MAFTP-Large): 59.4 mIoU.
#   python tools/test.py configs/maft_plus/maft-plus_convnext-l_coco-stuff171_test-context59.py \
#       --checkpoint maftp_l_converted.pth
_base_ = [
    '../_base_/models/maft_plus_convnext-l.py',
    '../_base_/datasets/context59.py',
    '../_base_/default_runtime.py',
]
model = dict(
    test_vocabulary='{{fileDirname}}/../../denseclip/datasets/vocabularies/maft_plus/cls_pc59.txt')
test_dataloader = dict(dataset=dict(pipeline={{_base_.maft_plus_test_pipeline}}))
