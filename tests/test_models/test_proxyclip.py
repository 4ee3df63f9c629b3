"""ProxyCLIP against independent computations of ``custom_attn`` and ``forward_feature``.

Proxy features are recomputed from the timm weights with DINO's own pre-processing written
out (``prepare_tokens`` with ``interpolate_pos_encoding``); the attention is formed per image
with an explicit softmax over the masked, sharpened cosine map.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_VIT, make_clip
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from denseclip.models.backbones import CLIPViT
from denseclip.models.backbones.proxy import DINOProxy
from denseclip.models.dense import ProxyCLIPAttention, proxy_attention

SIZES = [(64, 64), (48, 80)]
CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)


def tiny_dino(seed=0, **kwargs):
    torch.manual_seed(seed)
    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2,
                            num_classes=0, **kwargs).eval()
    with torch.no_grad():
        for p in vit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return vit


@pytest.fixture(scope='module')
def clip():
    return make_clip(TINY_VIT)


def _reference_attention(feats, v, beta, gamma):
    """Per image: cosine map, γ(S − β·mean S), S' < 0 masked, row softmax, applied per head."""
    out = torch.empty_like(v)
    for b in range(feats.shape[0]):
        f = feats[b]
        s = torch.cosine_similarity(f[:, None], f[None], dim=-1)
        s = gamma * (s - beta * s.mean())
        s[s < 0] = -math.inf
        a = torch.exp(s - s.max(1, keepdim=True).values)
        a = a / a.sum(1, keepdim=True)
        for head in range(v.shape[1]):
            out[b, head] = a @ v[b, head]
    return out


def test_proxy_attention_matches_the_explicit_formula():
    g = torch.Generator().manual_seed(0)
    feats, v = torch.randn(2, 6, 5, generator=g), torch.randn(2, 3, 6, 4, generator=g)
    torch.testing.assert_close(proxy_attention(feats, v, 1.2, 3.0),
                               _reference_attention(feats, v, 1.2, 3.0))
    torch.testing.assert_close(proxy_attention(feats, v, 0.8, 5.0),
                               _reference_attention(feats, v, 0.8, 5.0))


def test_mean_is_per_image():
    g = torch.Generator().manual_seed(1)
    feats = torch.cat([torch.randn(1, 6, 5, generator=g), torch.rand(1, 6, 5, generator=g)])
    v = torch.randn(2, 2, 6, 4, generator=g)
    together = proxy_attention(feats, v)
    alone = torch.cat([proxy_attention(feats[i:i + 1], v[i:i + 1]) for i in range(2)])
    torch.testing.assert_close(together, alone)
    # The released whole-batch mean gives a different answer here.
    f = F.normalize(feats, dim=-1)
    s = f @ f.transpose(1, 2)
    s = 3.0 * (s - 1.2 * s.mean())
    released = s.masked_fill(s < 0, -math.inf).softmax(-1)[:, None] @ v
    assert not torch.allclose(released, together)


@pytest.mark.parametrize('beta, masked', [(0.0, False), (1e-3, True), (-1e-3, False)])
def test_mask_boundary(beta, masked):
    # Orthogonal features: S = I, so off-diagonal S' = -γβ·mean(S): exactly 0 at β = 0 (kept,
    # only S' < 0 is masked), just below 0 for β > 0 (masked), just above for β < 0 (kept).
    N, gamma = 5, 3.0
    feats = torch.eye(N)[None]
    v = torch.randn(1, 1, N, 2)
    attn = proxy_attention(feats, torch.eye(N)[None, None], beta, gamma)[0, 0]
    if masked:
        torch.testing.assert_close(attn, torch.eye(N))
        torch.testing.assert_close(proxy_attention(feats, v, beta, gamma), v)
    else:
        off = gamma * (0 - beta / N)
        diag = gamma * (1 - beta / N)
        want_off = math.exp(off) / (math.exp(diag) + (N - 1) * math.exp(off))
        assert attn[0, 1].item() == pytest.approx(want_off, rel=1e-5) and want_off > 0


def test_rows_whose_every_entry_is_masked_keep_their_own_value():
    # Nearly identical proxy features: mean(S) > 1/β, so γ(S_ij − β·mean S) < 0 everywhere and
    # the released softmax returns NaN. Each token keeps its own value instead.
    g = torch.Generator().manual_seed(2)
    feats = torch.ones(1, 6, 5) + 1e-3 * torch.randn(1, 6, 5, generator=g)
    v = torch.randn(1, 2, 6, 4, generator=g)
    assert torch.isnan(_reference_attention(feats, v, 1.2, 3.0)).all()
    torch.testing.assert_close(proxy_attention(feats, v, 1.2, 3.0), v)


def _dino_features(vit, pixels):
    """DINO prepare_tokens + blocks + norm, with interpolate_pos_encoding's +0.1 resize."""
    B, _, H, W = pixels.shape
    x = vit.patch_embed.proj(pixels).flatten(2).transpose(1, 2)
    I, J = H // 8, W // 8
    pos = vit.pos_embed
    if (I, J) != (4, 4):
        grid = pos[:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((I + 0.1) / 4, (J + 0.1) / 4), mode='bicubic')
        pos = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, I * J, -1)], 1)
    x = torch.cat([vit.cls_token.expand(B, -1, -1), x], 1) + pos
    for block in vit.blocks:
        x = block(x)
    return vit.norm(x)[:, 1:].transpose(1, 2).reshape(B, -1, I, J)


def _reference_proxyclip(clip, vit, images, beta=1.2, gamma=3.0):
    """forward_feature + custom_attn, rows H and columns W, per-image mean."""
    pixels = images * CLIP_STD + CLIP_MEAN
    pixels = (pixels - torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1)) / torch.tensor(
        IMAGENET_DEFAULT_STD).view(3, 1, 1)
    ex = _dino_features(vit, pixels)
    B, _, I, J = ex.shape
    model = CLIPViT(model=clip, pos_interp='scale_factor').eval()
    tokens, (h, w) = model.trunk(images)  # the unchanged trunk, checked by other tests
    block = clip.visual.transformer.resblocks[-1]
    attn = block.attn
    D = tokens[-1].shape[-1]
    nh = attn.num_heads
    y = block.ln_1(tokens[-1]) @ attn.in_proj_weight.T + attn.in_proj_bias
    v = y[:, 1:, 2 * D:].reshape(B, h, w, nh, D // nh).permute(0, 3, 4, 1, 2)
    v = F.interpolate(v.reshape(B * nh, D // nh, h, w), size=(I, J), mode='bilinear')
    v = v.reshape(B, nh, D // nh, I * J).transpose(2, 3)
    out = _reference_attention(ex.flatten(2).transpose(1, 2), v, beta, gamma)
    z = attn.out_proj(out.transpose(1, 2).reshape(B, I * J, D))
    feats = clip.visual.ln_post(z) @ clip.visual.proj
    return feats.transpose(1, 2).reshape(B, -1, I, J)


def _proxyclip(clip, proxy, **kwargs):
    model = CLIPViT(model=clip, pos_interp='scale_factor').eval()
    model.dense = ProxyCLIPAttention(proxy=proxy, **kwargs).eval()
    return model


@pytest.mark.parametrize('size', SIZES)
def test_proxyclip_with_a_dino_proxy_matches_the_reference(clip, size):
    vit = tiny_dino()
    images = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2))
    model = _proxyclip(clip, DINOProxy(model=vit))
    with torch.no_grad():
        got = model.encode_dense(images)
        want = _reference_proxyclip(clip, vit, images)
    assert got.shape == (2, TINY_VIT['embed_dim'], size[0] // 8, size[1] // 8)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


class PositionProxy(nn.Module):
    """Features that are a function of position only: one-hot of the row, or of the token."""

    mean, std = IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    def __init__(self, stride, by):
        super().__init__()
        self.stride, self.by = stride, by
        self.seen = None

    def forward(self, images):
        self.seen = images
        B, _, H, W = images.shape
        I, J = H // self.stride, W // self.stride
        if self.by == 'row':
            index = torch.arange(I)[:, None].expand(I, J)
            feats = F.one_hot(index, I)
        else:
            feats = F.one_hot(torch.arange(I * J).reshape(I, J), I * J)
        return feats.permute(2, 0, 1).float().expand(B, -1, -1, -1)


def _value_path(clip, images):
    """o(v) of the last block on CLIP's own grid, (B, D, h, w)."""
    model = CLIPViT(model=clip, pos_interp='scale_factor').eval()
    tokens, (h, w) = model.trunk(images)
    block = clip.visual.transformer.resblocks[-1]
    D = tokens[-1].shape[-1]
    y = block.ln_1(tokens[-1][:, 1:]) @ block.attn.in_proj_weight[2 * D:].T
    ov = block.attn.out_proj(y + block.attn.in_proj_bias[2 * D:])
    return ov.transpose(1, 2).reshape(images.shape[0], D, h, w)


def _project(clip, z):
    B, D, I, J = z.shape
    feats = clip.visual.ln_post(z.flatten(2).transpose(1, 2)) @ clip.visual.proj
    return feats.transpose(1, 2).reshape(B, -1, I, J)


def test_non_square_rows_stay_rows(clip):
    # Features equal within a row and orthogonal across rows: each token averages its row.
    images = torch.randn(1, 3, 48, 80)
    model = _proxyclip(clip, PositionProxy(16, 'row'))
    with torch.no_grad():
        got = model.encode_dense(images)
        ov = _value_path(clip, images)  # (1, D, 3, 5)
        want = _project(clip, ov.mean(3, keepdim=True).expand(-1, -1, 3, 5))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_non_square_values_are_resized_to_the_proxy_grid_in_order(clip):
    # One-hot token features: A = I, so the output is o(v) bilinearly resized 3x5 -> 6x10.
    images = torch.randn(1, 3, 48, 80)
    model = _proxyclip(clip, PositionProxy(8, 'token'))
    with torch.no_grad():
        got = model.encode_dense(images)
        ov = F.interpolate(_value_path(clip, images), size=(6, 10), mode='bilinear')
        want = _project(clip, ov)
    assert got.shape[-2:] == (6, 10)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_the_proxy_sees_the_image_in_its_own_normalisation(clip):
    images = torch.randn(1, 3, 48, 80)
    proxy = PositionProxy(16, 'row')
    with torch.no_grad():
        _proxyclip(clip, proxy).encode_dense(images)
    pixels = images * CLIP_STD + CLIP_MEAN
    want = (pixels - torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1)) / torch.tensor(
        IMAGENET_DEFAULT_STD).view(3, 1, 1)
    torch.testing.assert_close(proxy.seen, want)
