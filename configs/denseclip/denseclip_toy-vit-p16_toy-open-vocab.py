# DenseCLIP trained on the toy world's open-vocabulary split, offline on the CPU, and evaluated
# on all 10 classes through the pixel-text score map s / tau, which is defined for any
# vocabulary (the decoder's FPN and classifier are sized by the 7 training classes):
#   python tools/train.py configs/denseclip/denseclip_toy-vit-p16_toy-open-vocab.py
#   python tools/test.py configs/denseclip/denseclip_toy-vit-p16_toy-open-vocab.py \
#       --checkpoint work_dirs/denseclip_toy-vit-p16_toy-open-vocab/iter_3000.pth
# denseclip_toy-vit-p16_toy-seen.py scores the same checkpoint's decoder on the seen classes.
_base_ = [
    '../_base_/models/denseclip_toy-vit-p16.py',
    '../_base_/datasets/toy_open_vocab.py',
    '../_base_/schedules/denseclip_toy-3k.py',
]
model = dict(
    test_vocabulary={{_base_.toy_vocabulary}},  # all 10, in the evaluation labels' order
    decode_head=dict(test_output='score_map'))
