# DenseCLIP trained on the toy world's open-vocabulary split (the same model and training as
# denseclip_toy-vit-p16_toy-open-vocab.py), its decoder scored on the 7 seen classes as the
# published protocol scores it (closed set, unseen pixels ignored):
#   python tools/test.py configs/denseclip/denseclip_toy-vit-p16_toy-seen.py \
#       --checkpoint work_dirs/denseclip_toy-vit-p16_toy-open-vocab/iter_3000.pth
_base_ = [
    '../_base_/models/denseclip_toy-vit-p16.py',
    '../_base_/datasets/toy_seen.py',
    '../_base_/schedules/denseclip_toy-3k.py',
]
