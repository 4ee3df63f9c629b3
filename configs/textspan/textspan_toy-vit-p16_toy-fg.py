# TextSpan's zero-shot segmenter on single-object toy scenes with the offline toy CLIP (ViT,
# 16-pixel patches, 4 layers of width 128). The image's class is picked among the six toy
# things (the analogue of ImageNet's object classes; the stuff classes are the background),
# with the toy CLIP's own templates.
_base_ = [
    '../_base_/models/textspan_segmenter.py',
    '../_base_/models/toy_clip.py',
    '../_base_/datasets/toy_fg.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(model={{_base_.toy_clip_model}}, pretrained={{_base_.toy_clip_weights}}),
    class_names=['red circle', 'yellow triangle', 'purple square', 'orange star', 'pink ring',
                 'black cross'],  # denseclip/toy/world.py THINGS
    templates={{_base_.toy_templates}})
