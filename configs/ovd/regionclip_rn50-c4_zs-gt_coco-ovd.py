# RegionCLIP zero-shot inference on COCO OVD with the ground-truth boxes as proposals ("RN50,
# GT, COCO" of test_zeroshot_inference.sh: CROP_REGION_TYPE GT, MULTIPLY_RPN_SCORE False):
# region classification alone, no proposal network.
#   python tools/test.py configs/ovd/regionclip_rn50-c4_zs-gt_coco-ovd.py
_base_ = [
    '../_base_/models/regionclip_rn50-c4.py',
    '../_base_/datasets/coco_ovd.py',
]
model = dict(vocabulary={{_base_.classes}}, proposal_source='gt', rpn=None, objectness=None)
train_dataloader = None  # zero-shot: nothing is trained
