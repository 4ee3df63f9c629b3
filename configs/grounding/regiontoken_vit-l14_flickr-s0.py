_base_ = [
    '../_base_/models/grounding_regiontoken.py',
    '../_base_/datasets/grounding_flickr-s0.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model='ViT-L-14'),
    heatmap=dict(
        temperature=0.02,  # eval.py vit14 flickr
    ),
    alpha=0.75,  # eval.py vit14 flickr
)
