# MTA-CLIP trained on the toy world's open-vocabulary split (7 seen classes), offline on the
# CPU. Its class head is a 7+1-way linear layer and its text queries have one learned embedding
# per training class, so it names the seen classes only: it is scored on them (the evaluation
# scenes with unseen pixels ignored), as the fpn_clip baseline and DenseCLIP's decoder are:
#   python tools/train.py configs/mta_clip/mta-clip_toy-vit-p16_toy-seen.py
#   python tools/test.py configs/mta_clip/mta-clip_toy-vit-p16_toy-seen.py \
#       --checkpoint work_dirs/mta-clip_toy-vit-p16_toy-seen/iter_2000.pth
_base_ = [
    '../_base_/models/mta_clip_toy-vit-p16.py',
    '../_base_/datasets/toy_seen.py',
    '../_base_/schedules/mta_clip_toy-2k.py',
]
