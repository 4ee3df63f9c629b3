"""A CLIP image tower as a timm ViT: ProxyCLIP's proxy and CLIP-DINOiser's teacher.

The toy CLIP's checkpoint (open_clip layout, text tower included) is loaded the way a user's
file is, through timm's CLIP converter, and compared with open_clip running the same weights.
"""
from __future__ import annotations

import json

import open_clip
import pytest
import torch
import torch.nn.functional as F
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from safetensors.torch import load_file, save_file
from timm.data import IMAGENET_DEFAULT_MEAN

from denseclip.clip import read_state_dict
from denseclip.engine.teachers import DINOTeacher, load_timm_vit
from denseclip.models.backbones.proxy import DINOProxy
from denseclip.toy import TOY_CONFIG, TOY_WEIGHTS

TIMM_CLIP = 'vit_base_patch16_clip_224'


def timm_kwargs(config: dict) -> dict:
    """timm overrides of ``vit_base_patch16_clip_224`` for an open_clip model config."""
    vision = config['vision_cfg']
    width = vision['width']
    kwargs = dict(embed_dim=width, depth=vision['layers'],
                  num_heads=width // vision.get('head_width', 64),
                  img_size=vision['image_size'], patch_size=vision['patch_size'])
    if config.get('quick_gelu'):
        kwargs['act_layer'] = 'quick_gelu'
    return kwargs


TOY = json.loads(TOY_CONFIG.read_text())
TOY_KWARGS = timm_kwargs(TOY)


@pytest.fixture(scope='module')
def toy_clip():
    """open_clip's own CLIP with the toy weights, float32."""
    model = open_clip.model.CLIP(**TOY).eval()
    model.load_state_dict({k: v.float() for k, v in load_file(str(TOY_WEIGHTS)).items()})
    return model


def _clip_normalised(seed: int, size=(224, 224)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pixels = torch.rand(2, 3, *size, generator=g)
    mean = torch.tensor(OPENAI_DATASET_MEAN).view(3, 1, 1)
    std = torch.tensor(OPENAI_DATASET_STD).view(3, 1, 1)
    return (pixels - mean) / std


def test_the_toy_file_holds_both_towers():
    """The converter, not a loose load, drops the text tower: the file has it."""
    state, _ = read_state_dict(TOY_WEIGHTS)
    assert 'token_embedding.weight' in state and 'text_projection' in state
    assert 'visual.proj' in state


def test_proxy_matches_open_clip_last_layer_tokens(toy_clip):
    proxy = DINOProxy(TIMM_CLIP, pretrained=TOY_WEIGHTS, model_kwargs=TOY_KWARGS,
                      mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD)
    assert proxy.mean == tuple(OPENAI_DATASET_MEAN) and DINOProxy.mean == IMAGENET_DEFAULT_MEAN
    images = _clip_normalised(0)
    with torch.no_grad():
        got = proxy(images)  # (B, D, 14, 14), after timm's final norm
        want = toy_clip.visual.forward_intermediates(
            images, indices=[len(toy_clip.visual.transformer.resblocks) - 1],
            normalize_intermediates=True, intermediates_only=True)['image_intermediates'][0]
    assert got.shape == (2, 128, 14, 14)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        assert torch.isfinite(proxy(_clip_normalised(1, (96, 160)))).all()


def test_teacher_last_block_qkv_is_open_clips(toy_clip):
    teacher = DINOTeacher(TIMM_CLIP, pretrained=TOY_WEIGHTS, model_kwargs=TOY_KWARGS,
                          mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD)
    assert teacher.mean == tuple(OPENAI_DATASET_MEAN)
    images = _clip_normalised(2)
    last = toy_clip.visual.transformer.resblocks[-1]
    seen = {}
    last.register_forward_pre_hook(lambda m, args: seen.__setitem__('x', args[0]))
    with torch.no_grad():
        out = teacher(images)
        toy_clip.visual(images)
        x = seen['x']
        if not toy_clip.visual.transformer.batch_first:
            x = x.transpose(0, 1)  # (B, T, D)
        qkv = F.linear(last.ln_1(x), last.attn.in_proj_weight, last.attn.in_proj_bias)
    B, T, _ = qkv.shape
    nh = last.attn.num_heads
    q, k, v = qkv.reshape(B, T, 3, nh, -1).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hd)
    assert out.grid == (14, 14) and out.v.shape == (2, 2, 197, 64)
    for ours, ref in ((out.q, q), (out.k, k), (out.v, v)):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_a_clip_file_of_another_size_names_the_fix(tmp_path):
    state, _ = read_state_dict(TOY_WEIGHTS)
    path = tmp_path / 'clip.safetensors'
    save_file(state, str(path))
    with pytest.raises(ValueError, match=r'visual.positional_embedding is \(197, 128\) but the '
                                         r'timm model expects \(50, 128\); set patch_size'):
        DINOProxy(TIMM_CLIP, pretrained=path, model_kwargs=dict(TOY_KWARGS, img_size=112))
    with pytest.raises(ValueError, match=r'visual.conv1.weight is \(128, 3, 16, 16\)'):
        load_timm_vit(TIMM_CLIP, path, dict(TOY_KWARGS, patch_size=32, img_size=448))
    with pytest.raises(ValueError, match=r"unexpected \(12\): \['blocks.3.attn.qkv.bias'"):
        load_timm_vit(TIMM_CLIP, path, dict(TOY_KWARGS, depth=3))


def test_bad_proxy_statistics_and_kwargs_are_reported():
    with pytest.raises(ValueError, match=r'DINOProxy: mean=\(0.5, 0.5\); expected three'):
        DINOProxy(TIMM_CLIP, model_kwargs=TOY_KWARGS, mean=(0.5, 0.5))
    with pytest.raises(ValueError, match='DINOTeacher: std=.*expected three'):
        DINOTeacher(TIMM_CLIP, pretrained=None, model_kwargs=TOY_KWARGS, std=(1.0,))
    with pytest.raises(ValueError, match='model_kwargs apply to a timm model name'):
        DINOProxy(model=DINOProxy(TIMM_CLIP, model_kwargs=TOY_KWARGS).vit,
                  model_kwargs=TOY_KWARGS)
