"""The offline toy world: synthetic shapes scenes (``world.py``) and a tiny CLIP trained on them
(``toy_clip.json`` + ``toy_clip.safetensors``, made by ``tools/train_toy_clip.py``)."""
from pathlib import Path

from .world import TOY_CLASSES, TOY_PALETTE, TOY_TEMPLATES, Scene, generate_scene, write_split

TOY_DIR = Path(__file__).resolve().parent
TOY_CONFIG = TOY_DIR / 'toy_clip.json'  # open_clip model config of the toy CLIP
TOY_WEIGHTS = TOY_DIR / 'toy_clip.safetensors'  # its weights, fp16

__all__ = ['TOY_CONFIG', 'TOY_WEIGHTS', 'TOY_CLASSES', 'TOY_PALETTE', 'TOY_TEMPLATES', 'Scene',
           'generate_scene', 'write_split']
