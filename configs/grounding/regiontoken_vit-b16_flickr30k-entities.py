_base_ = [
    '../_base_/models/grounding_regiontoken.py',
    '../_base_/datasets/grounding_flickr30k-entities.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model='ViT-B-16'),
    heatmap=dict(
        temperature=0.01,  # eval.py vit16 flickr
    ),
    alpha=0.8,  # eval.py vit16 flickr
)
