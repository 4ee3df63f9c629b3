"""Tiny models, images and configs for the CLIP-DINOiser tests (seeded, CPU, no network)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
LEAF = ROOT / 'configs' / 'clip_dinoiser' / 'clip_dinoiser_vit-b16_train.py'

# Four layers, so blocks[-3] (the guidance block) is neither the first nor the last.
TINY_CLIP = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=64, patch_size=16, width=64, layers=4, head_width=32),
    text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
    quick_gelu=True,
)
TINY_DINO = dict(embed_dim=64, depth=2, num_heads=2)  # timm vit_base_patch16_224 overrides


def write_tiny_clip(directory: Path) -> Path:
    path = directory / 'tiny_clip.json'
    path.write_text(json.dumps(TINY_CLIP))
    return path


def write_tiny_dino(directory: Path, seed: int = 0) -> Path:
    """A random timm ViT (patch 16, width 64, depth 2) saved as safetensors."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    vit = timm.create_model('vit_base_patch16_224', pretrained=False, num_classes=0, **TINY_DINO)
    path = directory / 'tiny_dino.safetensors'
    save_file(vit.state_dict(), str(path))
    return path


def write_images(root: Path, count: int, size: tuple[int, int], seed: int = 0) -> Path:
    """``count`` random RGB PNGs of (H, W) ``size`` in an ImageFolder-style tree."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = root / f'class_{i % 2}'
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f'{i}.png')
    return root


def write_config(directory: Path, images: Path, *, img_size: int = 64, batch_size: int = 2,
                 max_iters: int = 4, interval: int = 2, dataset: str = '', extra: str = '',
                 name: str = 'tiny.py') -> Path:
    """A config inheriting the real leaf, with tiny models and tiny data."""
    clip = write_tiny_clip(directory)
    dino = write_tiny_dino(directory)
    text = f"""
_base_ = [{str(LEAF)!r}]
model = dict(
    backbone=dict(model={str(clip)!r}, pretrained=None),
    dino=dict(pretrained={str(dino)!r}, model_kwargs={TINY_DINO!r}),
    refiner=dict(in_channels={TINY_CLIP['vision_cfg']['width']}, proj_channels=16))
train_dataloader = dict(batch_size={batch_size}, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={str(images)!r}, img_size={img_size},
                                     subset_size=None, {dataset}))
train_cfg = dict(max_iters={max_iters})
default_hooks = dict(checkpoint=dict(interval={interval}, max_keep_ckpts=-1),
                     logger=dict(interval=1))
log_processor = dict(window_size=1)  # log each iteration's own loss
{extra}
"""
    path = directory / name
    path.write_text(text)
    return path


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', HF_HUB_OFFLINE='1',
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    env.update(extra)
    return env


def train_command(config: Path, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / 'tools' / 'train.py'), str(config), *args]


def run(cmd: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f'{cmd} failed ({result.returncode}):\n{result.stderr[-4000:]}')
    return result


def logged_scalars(work_dir: Path) -> list[dict]:
    """The per-iteration records of mmengine's LocalVisBackend."""
    (path,) = work_dir.glob('*/vis_data/scalars.json')
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
