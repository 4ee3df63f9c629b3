# CAT-Seg trained on the toy world's open-vocabulary split (the same model and training as
# catseg_toy-vit-p16_toy-open-vocab.py), scored on the 7 seen classes (closed set, unseen pixels
# ignored), as DenseCLIP's seen-only row:
#   python tools/test.py configs/catseg/catseg_toy-vit-p16_toy-seen.py \
#       --checkpoint work_dirs/catseg_toy-vit-p16_toy-open-vocab/iter_1500.pth
_base_ = [
    '../_base_/models/catseg_toy-vit-p16.py',
    '../_base_/datasets/toy_seen.py',
    '../_base_/schedules/catseg_toy-1.5k.py',
]
