# MAFT+ (B) trained on COCO-Stuff-171 (openvocab_coco_2017_train_stuff_sem_seg) for 60k
# iterations, batch 8 (8 GPUs x 1):
#   tools/dist_train.sh configs/maft_plus/maft-plus_convnext-b_coco-stuff171.py 8
# The maft-plus_convnext-b_coco-stuff171_test-*.py configs test the checkpoint on the five
# benchmarks.
_base_ = [
    '../_base_/models/maft_plus_convnext-b.py',
    '../_base_/datasets/coco-stuff171_maft-plus.py',
    '../_base_/schedules/maft_plus_60k.py',
]
