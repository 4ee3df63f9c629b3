"""Shared fixtures: tiny CLIPs in open_clip's own architecture, seeded, CPU, no network."""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import open_clip
import pytest
import torch

import denseclip  # noqa: F401  first: installs mmcv._ext before any mmseg/mmdet import

# Two heads of width 32: small enough for fast tests, >1 head so head splitting is exercised.
TINY_VIT = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=64, patch_size=16, width=64, layers=2, head_width=32),
    text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
    quick_gelu=True,
)
# OpenAI's build_model infers heads = width // 64, so files to be inferred use head width 64.
OPENAI_VIT = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=64, patch_size=16, width=128, layers=2, head_width=64),
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=1),
    quick_gelu=True,
)
OPENAI_RN = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=64, layers=(1, 1, 1, 1), width=16, head_width=64),
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=1),
    quick_gelu=True,
)


def pytest_configure(config):
    # Text-classifier caches go to a fresh directory, never the user's ~/.cache.
    cache = tempfile.mkdtemp(prefix='denseclip-test-cache-')
    os.environ['DENSECLIP_CACHE_DIR'] = cache
    config.add_cleanup(lambda: shutil.rmtree(cache, ignore_errors=True))
    os.environ.setdefault('HF_HUB_OFFLINE', '1')  # tests never reach a hub


def make_clip(cfg: dict, seed: int = 0) -> open_clip.model.CLIP:
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**cfg).eval()
    # open_clip initialises some biases to zero; randomise everything so tests see every term.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith('bias') or 'ln' in name or name == 'visual.class_embedding':
                param.add_(torch.randn_like(param) * 0.1)
    return model


@pytest.fixture
def tiny_vit_config(tmp_path):
    path = tmp_path / 'tiny_vit.json'
    path.write_text(json.dumps(TINY_VIT))
    return path


@pytest.fixture
def tiny_vit(tiny_vit_config, tmp_path):
    """(config path, weights path, model) of a random tiny ViT CLIP saved as safetensors."""
    from safetensors.torch import save_file

    model = make_clip(TINY_VIT)
    weights = tmp_path / 'tiny_vit.safetensors'
    save_file(model.state_dict(), str(weights))
    return tiny_vit_config, weights, model
