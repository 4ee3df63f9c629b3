_base_ = [
    '../_base_/models/grounding_dilated-resnet.py',
    '../_base_/datasets/grounding_vg-s0.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model='RN50'),
    heatmap=dict(temperature=0.01),  # eval.py rn50 vg
    alpha=0.8,  # eval.py rn50 vg
)
