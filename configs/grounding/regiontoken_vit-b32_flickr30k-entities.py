_base_ = [
    '../_base_/models/grounding_regiontoken.py',
    '../_base_/datasets/grounding_flickr30k-entities.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model='ViT-B-32'),
    heatmap=dict(
        temperature=0.009,  # eval.py vit32 flickr
        n_segments=list(range(100, 401, 50)),  # eval.py vit32
    ),
    alpha=0.9,  # eval.py vit32 flickr
)
