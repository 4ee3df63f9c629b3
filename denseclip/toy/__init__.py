"""The offline toy world: synthetic shapes scenes (``world.py``) and a tiny CLIP trained on them
(``toy_clip.json`` + ``toy_clip.safetensors``, made by ``tools/train_toy_clip.py``).

``toy_clip_dinoiser_heads.safetensors`` holds CLIP-DINOiser's two heads for the toy CLIP, trained
on toy scenes with the toy CLIP's own image tower as the "DINO" teacher::

    python tools/train.py configs/clip_dinoiser/clip_dinoiser_toy-vit-p16_toy-train.py
    cp work_dirs/clip_dinoiser_toy-vit-p16_toy-train/clip_dinoiser_heads.safetensors \
        denseclip/toy/toy_clip_dinoiser_heads.safetensors
"""
from pathlib import Path

from .world import (TOY_CLASSES, TOY_PALETTE, TOY_SEEN_CLASSES, TOY_TEMPLATES, TOY_UNSEEN_CLASSES,
                    Scene, generate_scene, write_split)

TOY_DIR = Path(__file__).resolve().parent
TOY_CONFIG = TOY_DIR / 'toy_clip.json'  # open_clip model config of the toy CLIP
TOY_WEIGHTS = TOY_DIR / 'toy_clip.safetensors'  # its weights, fp16
# CLIP-DINOiser heads for the toy CLIP (CLIPDINOiserRefiner in_channels=128, proj_channels=64)
TOY_CLIP_DINOISER_HEADS = TOY_DIR / 'toy_clip_dinoiser_heads.safetensors'

__all__ = ['TOY_CONFIG', 'TOY_WEIGHTS', 'TOY_CLIP_DINOISER_HEADS', 'TOY_CLASSES', 'TOY_PALETTE',
           'TOY_TEMPLATES', 'TOY_SEEN_CLASSES', 'TOY_UNSEEN_CLASSES', 'Scene', 'generate_scene',
           'write_split']
