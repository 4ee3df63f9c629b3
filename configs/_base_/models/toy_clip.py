# The offline toy CLIP (denseclip/toy/toy_clip.json + toy_clip.safetensors, trained by
# tools/train_toy_clip.py on the toy world) and the text side it was trained with. Variables,
# not a `model` dict: a toy config merges them into its method's harness.
toy_clip_model = '{{fileDirname}}/../../../denseclip/toy/toy_clip.json'
toy_clip_weights = '{{fileDirname}}/../../../denseclip/toy/toy_clip.safetensors'
toy_vocabulary = '{{fileDirname}}/../../../denseclip/datasets/vocabularies/toy/cls_toy_world.txt'
# denseclip/toy/world.py TOY_TEMPLATES: the prompts the toy text tower saw in training.
toy_templates = [
    'a photo of a {}.', 'a picture of a {}.', 'an image of a {}.', 'a {}.', 'a photo of the {}.',
    'a rendering of a {}.'
]
