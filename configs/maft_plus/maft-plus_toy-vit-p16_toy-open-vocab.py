# MAFT+ trained on the toy world's open-vocabulary split (7 seen classes), offline on the CPU,
# and evaluated on all 10 classes (seen / unseen / all and their harmonic mean):
#   python tools/train.py configs/maft_plus/maft-plus_toy-vit-p16_toy-open-vocab.py
#   python tools/test.py configs/maft_plus/maft-plus_toy-vit-p16_toy-open-vocab.py \
#       --checkpoint work_dirs/maft-plus_toy-vit-p16_toy-open-vocab/iter_400.pth
_base_ = [
    '../_base_/models/maft_plus_toy-vit-p16.py',
    '../_base_/datasets/toy_open_vocab.py',
    '../_base_/schedules/maft_plus_toy-400.py',
]
model = dict(test_vocabulary={{_base_.toy_vocabulary}})  # all 10, in the evaluation order
train_dataloader = dict(batch_size=4, num_workers=1)  # Deviation: 4 scenes a step, not 8
