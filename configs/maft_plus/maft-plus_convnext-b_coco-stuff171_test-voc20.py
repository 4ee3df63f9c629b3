# MAFT+ (B) trained on COCO-Stuff-171, tested on PASCAL VOC 2012 val without background (PAS-20):
# whole images at short side 800. Published (README, MAFTP-Base): 95.4 mIoU.
#   python tools/test.py configs/maft_plus/maft-plus_convnext-b_coco-stuff171_test-voc20.py \
#       --checkpoint maftp_b_converted.pth
_base_ = [
    '../_base_/models/maft_plus_convnext-b.py',
    '../_base_/datasets/voc20.py',
    '../_base_/default_runtime.py',
]
model = dict(
    test_vocabulary='{{fileDirname}}/../../denseclip/datasets/vocabularies/maft_plus/cls_voc20.txt')
test_dataloader = dict(dataset=dict(pipeline={{_base_.maft_plus_test_pipeline}}))
