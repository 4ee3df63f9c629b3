_base_ = [
    '../_base_/models/grounding_dilated-resnet.py',
    '../_base_/datasets/grounding_flickr-s0.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model='RN50x4'),
    heatmap=dict(temperature=0.03),  # eval.py rn50x4 flickr
    alpha=0.7,  # eval.py rn50x4 flickr
)
