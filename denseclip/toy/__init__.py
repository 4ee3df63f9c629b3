"""The offline toy world: synthetic shapes scenes (``world.py``) and a tiny CLIP trained on them
(``toy_clip.json`` + ``toy_clip.safetensors``, made by ``tools/train_toy_clip.py``)."""
from .world import TOY_CLASSES, TOY_PALETTE, TOY_TEMPLATES, Scene, generate_scene, write_split

__all__ = ['TOY_CLASSES', 'TOY_PALETTE', 'TOY_TEMPLATES', 'Scene', 'generate_scene', 'write_split']
