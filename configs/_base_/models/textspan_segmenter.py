# TextSpan's zero-shot segmenter (yossigandelsman/clip_text_span compute_segmentations.py
# @49f70f3; reference notes §11): every block of the image tower unchanged, the per-patch sum
# of all layers' and heads' direct contributions scored against the predicted ImageNet class
# minus the mean over the 1000 classes (80 OpenAI templates, compute_text_projection.py).
model = dict(
    type='TextSpanSegmentor',
    backbone=dict(
        type='CLIPViT',
        model='ViT-H-14',  # compute_segmentations.py --model default
        pretrained='laion2b_s32b_b79k',  # --pretrained default
        pos_interp='size'),  # 224 input: the native grid, no interpolation
    # utils/imagenet_classes.py@49f70f3, one name a line (duplicates kept, as released)
    class_names='{{fileDirname}}/../../../denseclip/datasets/textspan/imagenet_classes.txt',
    templates='openai_imagenet')  # utils/openai_templates.py: the same 80 templates
