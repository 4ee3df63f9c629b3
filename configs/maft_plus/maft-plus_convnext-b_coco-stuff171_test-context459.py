# MAFT+ (B) trained on COCO-Stuff-171, tested on PASCAL Context-459 val (5,105 images): whole
# images at short side 800. Published (README, MAFTP-Base): 16.2 mIoU.
#   python tools/test.py configs/maft_plus/maft-plus_convnext-b_coco-stuff171_test-context459.py \
#       --checkpoint maftp_b_converted.pth
_base_ = [
    '../_base_/models/maft_plus_convnext-b.py',
    '../_base_/datasets/context459.py',
    '../_base_/default_runtime.py',
]
model = dict(
    test_vocabulary='{{fileDirname}}/../../denseclip/datasets/vocabularies/maft_plus/cls_pc459.txt')
test_dataloader = dict(dataset=dict(pipeline={{_base_.maft_plus_wide_test_pipeline}}))
