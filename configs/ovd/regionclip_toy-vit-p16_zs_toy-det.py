# Zero-shot open-vocabulary detection on the toy world: the toy CLIP's NACLIP dense map pooled
# in the proposals of a base-class toy RPN, classified among all six things by their names
# (toy templates), RegionCLIP's scoring. Box AP50 on the two novel and the four base things
# (OVDCocoMetric). Nothing is trained here. The RPN is the one trained on scenes without
# novel things (rpn_toy-vit-p16_toy-det-base-only.py; with rpn_toy-vit-p16_toy-det-base.py,
# whose scenes hold novel things as background, novel AP50 falls to ~0.02, docs), and the
# rescoring takes the objectness probability: the released logit drops every proposal the
# RPN scores below 0.5, most of the novel ones (novel AP50 0.046 vs 0.106; base 0.53 both).
#   python tools/test.py configs/ovd/regionclip_toy-vit-p16_zs_toy-det.py
_base_ = [
    '../_base_/models/regionclip_toy-vit-p16.py',
    '../_base_/datasets/toy_det.py',
]
model = dict(vocabulary={{_base_.classes}},
             objectness='sigmoid',
             rpn_checkpoint='work_dirs/rpn_toy-vit-p16_toy-det-base-only/iter_300.pth')
train_dataloader = None  # zero-shot: nothing is trained
