# CAT-Seg (B) trained on COCO-Stuff-171 at 384x384 for 80k iterations, batch 4 (4 GPUs x 1):
#   tools/dist_train.sh configs/catseg/catseg_vit-b16_coco-stuff171-384x384.py 4
# The catseg_vit-b16_coco-stuff171_test-*.py configs test the checkpoint on the six benchmarks.
_base_ = [
    '../_base_/models/catseg_vit-b16.py',
    '../_base_/datasets/coco-stuff171_catseg-384x384.py',
    '../_base_/schedules/catseg_80k.py',
]
