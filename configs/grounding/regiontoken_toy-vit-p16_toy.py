# Region tokens with the offline toy CLIP (ViT, 16-pixel patches, 4 layers of width 128) on the
# toy world's phrases. No released setting exists for it: the ViT-B/16 Flickr30k ones (harness).
_base_ = [
    '../_base_/models/grounding_regiontoken.py',
    '../_base_/models/toy_clip.py',
    '../_base_/datasets/grounding_toy.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model={{_base_.toy_clip_model}}, pretrained={{_base_.toy_clip_weights}}))
