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
# open_clip's ConvNeXt tower (timm trunk + linear head) on timm's tiny test_convnext:
# stages (24, 32, 48, 64) channels at strides 4..32.
TINY_CONVNEXT = dict(
    embed_dim=32,
    vision_cfg=dict(timm_model_name='test_convnext', timm_model_pretrained=False, timm_pool='',
                    timm_proj='linear', image_size=64),
    text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
)

# timm towers inside open_clip, shrunk (width 64, 2 blocks, 2 heads, 16-pixel patches, 4x4 grid):
# EVA02-CLIP's block (separate q/k/v with q and v biases, sub-LN, SwiGLU with its LN, RoPE
# with ref_feat_shape) and SigLIP's ViT (no [CLS], MAP head). Built for dynamic sizes so the
# tower's own forward runs at any input size, as the family tests compare against it.
TINY_EVA = dict(
    embed_dim=32,
    vision_cfg=dict(timm_model_name='denseclip_test_eva02', timm_model_pretrained=False,
                    timm_pool='token', timm_proj=None, image_size=64),
    text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
)
TINY_SIGLIP = dict(
    embed_dim=64,  # SigLIP has no projection: E is the tower width
    vision_cfg=dict(timm_model_name='denseclip_test_siglip', timm_model_pretrained=False,
                    timm_pool='map', timm_proj='none', image_size=64),
    text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
)


def _register_tiny_timm_towers():
    from timm.models import register_model
    from timm.models.eva import Eva
    from timm.models.vision_transformer import VisionTransformer

    def tiny(cls, **args):
        def create(pretrained=False, **kwargs):
            for key in ('pretrained_cfg', 'pretrained_cfg_overlay', 'cache_dir'):
                kwargs.pop(key, None)
            return cls(**dict(args, **kwargs))
        return create

    eva = tiny(Eva, img_size=64, patch_size=16, embed_dim=64, depth=2, num_heads=2,
               qkv_fused=False, mlp_ratio=4 * 2 / 3, swiglu_mlp=True, scale_mlp=True,
               scale_attn_inner=True, use_rot_pos_emb=True, ref_feat_shape=(4, 4),
               init_values=0.5, dynamic_img_size=True, global_pool='token')  # layer scale on
    eva.__name__ = 'denseclip_test_eva02'
    siglip = tiny(VisionTransformer, img_size=64, patch_size=16, embed_dim=64, depth=2,
                  num_heads=2, class_token=False, global_pool='map', dynamic_img_size=True)
    siglip.__name__ = 'denseclip_test_siglip'
    register_model(eva)
    register_model(siglip)


_register_tiny_timm_towers()


def make_tower_clip(cfg: dict, seed: int = 0) -> open_clip.model.CLIP:
    """An open_clip CLIP with a timm image tower, every image-tower weight perturbed (timm
    zero-initialises biases and layer scales; the tests must see every term)."""
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**cfg).eval()
    with torch.no_grad():
        for param in model.visual.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return model


@pytest.fixture(autouse=True)
def _restore_default_scope():
    """Forget the default scopes a test created: a Runner on an mmdet config makes 'mmdet' the
    current scope for the rest of the process, and later builds through mmseg's registries
    would then look in mmdet's (a test's order must not change its result)."""
    from mmengine.registry import DefaultScope

    before = set(DefaultScope._instance_dict)
    yield
    for name in [n for n in DefaultScope._instance_dict if n not in before]:
        del DefaultScope._instance_dict[name]


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
