# The plain-dense baseline on the toy world: the MaskCLIP map of the toy CLIP (value path in the
# last block, 14 x 14 at 224), upsampled to 224, exp(cos/T), then the same box search. As the
# released 'denseclip' model of eval.py@d2026f3 (Flickr30k: alpha 0.7, T 0.03, no min-max), with
# a MaskCLIP ViT map instead of the stride-32 ResNet one.
_base_ = [
    '../_base_/models/grounding_regiontoken.py',
    '../_base_/models/toy_clip.py',
    '../_base_/datasets/grounding_toy.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(
        model={{_base_.toy_clip_model}},
        pretrained={{_base_.toy_clip_weights}},
        dense=dict(type='MaskCLIPAttention'),
        pos_interp='size'),
    heatmap=dict(_delete_=True, type='DenseHeatmap', temperature=0.03),  # replaces region tokens
    alpha=0.7,  # eval.py denseclip flickr
)
