_base_ = [
    '../_base_/models/grounding_regiontoken.py',
    '../_base_/datasets/grounding_vg-s0.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model='ViT-L-14'),
    heatmap=dict(
        temperature=0.01,  # eval.py vit14 vg
    ),
    alpha=0.8,  # eval.py vit14 vg
)
