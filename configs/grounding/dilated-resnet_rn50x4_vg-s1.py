_base_ = [
    '../_base_/models/grounding_dilated-resnet.py',
    '../_base_/datasets/grounding_vg-s1.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model='RN50x4'),
    heatmap=dict(temperature=0.01),  # eval.py rn50x4 vg
    alpha=0.7,  # eval.py rn50x4 vg
)
