_base_ = [
    '../_base_/models/grounding_dilated-resnet.py',
    '../_base_/datasets/grounding_flickr30k-entities.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model='RN50'),
    heatmap=dict(temperature=0.03),  # eval.py rn50 flickr
    alpha=0.7,  # eval.py rn50 flickr
)
