# CAT-Seg trained on the toy world's open-vocabulary split (7 seen classes), offline on the CPU,
# and evaluated on all 10 classes (seen / unseen / all and their harmonic mean):
#   python tools/train.py configs/catseg/catseg_toy-vit-p16_toy-open-vocab.py
#   python tools/test.py configs/catseg/catseg_toy-vit-p16_toy-open-vocab.py \
#       --checkpoint work_dirs/catseg_toy-vit-p16_toy-open-vocab/iter_1500.pth
_base_ = [
    '../_base_/models/catseg_toy-vit-p16.py',
    '../_base_/datasets/toy_open_vocab.py',
    '../_base_/schedules/catseg_toy-1.5k.py',
]
model = dict(test_vocabulary={{_base_.toy_vocabulary}})  # all 10, in the evaluation order
