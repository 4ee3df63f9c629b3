# MAFT+ (B) trained on COCO-Stuff-171, tested on ADE20K-150 val (2,000 images): whole images at
# short side 800. Published (README, MAFTP-Base): 34.6 mIoU.
#   python tools/test.py configs/maft_plus/maft-plus_convnext-b_coco-stuff171_test-ade20k-150.py \
#       --checkpoint maftp_b_converted.pth
_base_ = [
    '../_base_/models/maft_plus_convnext-b.py',
    '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    test_vocabulary='{{fileDirname}}/../../denseclip/datasets/vocabularies/maft_plus/cls_ade150.txt')
test_dataloader = dict(dataset=dict(pipeline={{_base_.maft_plus_test_pipeline}}))
