_base_ = [
    '../_base_/models/grounding_regiontoken.py',
    '../_base_/datasets/grounding_vg-s1.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model='ViT-B-16'),
    heatmap=dict(
        temperature=0.01,  # eval.py vit16 vg
    ),
    alpha=0.85,  # eval.py vit16 vg
)
