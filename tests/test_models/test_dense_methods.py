"""Every dense method against an independent computation written from its equations.

The reference below reads q, k, v straight from the open_clip weights (``in_proj_weight``),
splits heads with its own reshape and forms each attention map explicitly.
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_VIT, make_clip

import denseclip
from denseclip.models.backbones import CLIPViT
from denseclip.apis.dense_clip import dense_method_kwargs
from denseclip.models.dense import VanillaAttention, neighbourhood_prior
from denseclip.registry import MODELS

SIZES = [(64, 64), (48, 80)]  # native 4x4 grid, and 3x5: non-square, interpolated pos-embed


def _pos_embed(visual, grid, mode):
    """Position embedding for ``grid`` written from the two interpolation formulas."""
    pos = visual.positional_embedding
    h0, w0 = visual.grid_size
    patches = pos[1:].reshape(1, h0, w0, -1).permute(0, 3, 1, 2)
    if mode == 'size':
        patches = F.interpolate(patches, size=grid, mode='bicubic', align_corners=False)
    else:  # SCLIP clip/model.py interpolate_pos_encoding: rows scaled by (h + 0.1) / h0
        patches = F.interpolate(patches, scale_factor=((grid[0] + 0.1) / h0,
                                                       (grid[1] + 0.1) / w0), mode='bicubic')
    return torch.cat([pos[:1], patches.permute(0, 2, 3, 1).reshape(-1, pos.shape[1])])


# Each reference's position-embedding resampling (reference notes §16): MaskCLIP resizes to the
# target grid, SCLIP's open_clip fork (and the methods built on it) scales by (h + 0.1) / h0.
POS_INTERP = dict(vanilla='scale_factor', maskclip='size', sclip='scale_factor',
                  clearclip='scale_factor', naclip='scale_factor', cliptrase='scale_factor')


def reference_dense(clip, images, method):
    """Dense features of ``method`` computed from the papers' equations."""
    visual = clip.visual
    B = images.shape[0]
    grid = (images.shape[2] // 16, images.shape[3] // 16)
    mode = POS_INTERP[method]
    x = visual.conv1(images).flatten(2).transpose(1, 2)
    x = torch.cat([visual.class_embedding.expand(B, 1, -1), x], 1)
    x = visual.ln_pre(x + (visual.positional_embedding if grid == visual.grid_size
                           else _pos_embed(visual, grid, mode)))
    for block in visual.transformer.resblocks[:-1]:
        x = block(x)
    block = visual.transformer.resblocks[-1]
    attn = block.attn
    nh = attn.num_heads
    D = x.shape[-1]
    y = block.ln_1(x) @ attn.in_proj_weight.T + attn.in_proj_bias
    q, k, v = (t.reshape(B, -1, nh, D // nh).transpose(1, 2) for t in y.split(D, dim=-1))
    s = (D // nh) ** -0.5
    T = x.shape[1]
    if method == 'vanilla':
        A = torch.softmax(s * q @ k.transpose(-1, -2), -1)
    elif method == 'maskclip':
        A = torch.eye(T)
    elif method == 'sclip':  # Eq. (4) of SCLIP: softmax(qq) + softmax(kk), no renormalisation
        A = torch.softmax(s * q @ q.transpose(-1, -2), -1) + torch.softmax(
            s * k @ k.transpose(-1, -2), -1)
    elif method == 'cliptrase':  # model.py block 12: three softmaxes summed, rows sum to 3
        A = sum(torch.softmax(s * t @ t.transpose(-1, -2), -1) for t in (q, k, v))
    elif method == 'clearclip':
        A = torch.softmax(s * q @ q.transpose(-1, -2), -1)
    elif method == 'naclip':
        rows, cols = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing='ij')
        r, c = rows.flatten().float(), cols.flatten().float()
        d2 = (r[:, None] - r[None]) ** 2 + (c[:, None] - c[None]) ** 2
        omega = torch.zeros(T, T)
        omega[1:, 1:] = torch.exp(-d2 / 50)  # sigma = 5
        A = torch.softmax(s * k @ k.transpose(-1, -2) + omega, -1)
    o = attn.out_proj((A @ v).transpose(1, 2).reshape(B, T, D))
    if method in ('vanilla', 'maskclip', 'sclip', 'cliptrase'):  # residual and FFN kept
        z = x + o
        z = z + block.mlp(block.ln_2(z))
    else:  # ClearCLIP, NACLIP: attention branch only
        z = o
    feats = visual.ln_post(z[:, 1:]) @ visual.proj
    return feats.transpose(1, 2).reshape(B, -1, *grid)


@pytest.fixture(scope='module')
def clip():
    return make_clip(TINY_VIT)


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('method', sorted(POS_INTERP))  # proxyclip needs a proxy: own tests
def test_encode_dense_matches_equations(clip, method, size):
    model = CLIPViT(model=clip, **dense_method_kwargs(method)).eval()
    images = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = model.encode_dense(images)
        want = reference_dense(clip, images, method)
    assert got.shape == (2, TINY_VIT['embed_dim'], size[0] // 16, size[1] // 16)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_vanilla_equals_open_clips_own_forward(clip):
    # At the native grid, vanilla dense features are open_clip's token outputs projected.
    images = torch.randn(2, 3, 64, 64)
    model = CLIPViT(model=clip).eval()
    with torch.no_grad():
        tokens = clip.visual.transformer(clip.visual._embeds(images))
        want = clip.visual.ln_post(tokens[:, 1:]) @ clip.visual.proj
        got = model.encode_dense(images)
    torch.testing.assert_close(got.flatten(2).transpose(1, 2), want, rtol=1e-5, atol=1e-5)


class DiagonalAttention(VanillaAttention):
    """Vanilla machinery whose softmax can only pick the token itself: the identity."""

    def attend(self, q, k, v, grid):
        T = q.shape[-2]
        mask = torch.full((T, T), float('-inf')).fill_diagonal_(0)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class QQAttention(VanillaAttention):
    """Vanilla machinery with the key replaced by the query."""

    def attend(self, q, k, v, grid):
        return super().attend(q, q, v, grid)


def test_maskclip_is_vanilla_with_identity_attention(clip):
    images = torch.randn(1, 3, 48, 80)
    maskclip = CLIPViT(model=clip, dense=dict(type='MaskCLIPAttention')).eval()
    diagonal = CLIPViT(model=clip).eval()
    diagonal.dense = DiagonalAttention()
    with torch.no_grad():
        torch.testing.assert_close(maskclip.encode_dense(images), diagonal.encode_dense(images))


def test_clearclip_with_residual_and_ffn_is_vanilla_with_qq(clip):
    images = torch.randn(1, 3, 48, 80)
    clear = CLIPViT(model=clip, dense=dict(type='ClearCLIPAttention', residual=True, ffn=True))
    qq = CLIPViT(model=clip)
    qq.dense = QQAttention()
    with torch.no_grad():
        torch.testing.assert_close(clear.eval().encode_dense(images),
                                   qq.eval().encode_dense(images))


def test_naclip_prior_on_the_14x14_grid():
    omega = neighbourhood_prior((14, 14), sigma=5.0)
    assert omega.shape == (197, 197)
    assert omega[0].abs().sum() == 0 and omega[:, 0].abs().sum() == 0
    # Patch 0 is (0, 0); patch 1 is (0, 1); patch 14 is (1, 0); patch 15 is (1, 1).
    torch.testing.assert_close(omega[1, 1], torch.tensor(1.0))
    torch.testing.assert_close(omega[1, 2], torch.tensor(math.exp(-1 / 50)))
    torch.testing.assert_close(omega[1, 15], torch.tensor(math.exp(-1 / 50)))
    torch.testing.assert_close(omega[1, 16], torch.tensor(math.exp(-2 / 50)))
    torch.testing.assert_close(omega[1, 196], torch.tensor(math.exp(-(13 ** 2 * 2) / 50)))
    assert torch.equal(omega, omega.T)


def test_pos_embed_forms_differ_off_the_native_grid_and_agree_on_it(clip):
    images = torch.randn(1, 3, 48, 80)
    size = CLIPViT(model=clip, pos_interp='size').eval()
    scale = CLIPViT(model=clip, pos_interp='scale_factor').eval()
    with torch.no_grad():
        assert not torch.allclose(size.encode_dense(images), scale.encode_dense(images))
        native = torch.randn(1, 3, 64, 64)
        torch.testing.assert_close(size.encode_dense(native), scale.encode_dense(native))


@pytest.mark.parametrize('type_name', sorted(
    name for name, cls in MODELS.module_dict.items()
    if isinstance(cls, type) and issubclass(cls, denseclip.models.dense.DenseAttention)
    # a second encoder's weights: their own tests (test_proxyclip, test_corrclip, test_trident)
    and name not in ('ProxyCLIPAttention', 'CorrCLIPAttention', 'TridentAttention')))
def test_every_registered_attention_runs_non_square_with_gradients(clip, type_name):
    # settings that fit the 2-block tiny CLIP (SC-CLIP reads tokens after earlier blocks)
    fit = dict(SCCLIPAttention=dict(pre_adjust_idx=0, post_adjust_idx=0, multi_start_idx=0,
                                    multi_end_idx=1),
               ResCLIPAttention=dict(attention=dict(type='NACLIPAttention'), rcs_blocks=(0, 1)),
               CorrScopeAttention=dict(attention=dict(type='NACLIPAttention')))
    model = CLIPViT(model=clip, dense=dict(type=type_name, **fit.get(type_name, {})))
    images = torch.randn(2, 3, 32, 112, requires_grad=True)
    regions = torch.zeros(2, 32, 112, dtype=torch.long)
    regions[:, :, 48:] = 1  # CorrCLIP's scope: two regions
    masks = model.dense.use_masks(regions) if hasattr(model.dense, 'use_masks') else nullcontext()
    with masks:
        feats = model.encode_dense(images)
    assert feats.shape == (2, TINY_VIT['embed_dim'], 2, 7) and torch.isfinite(feats).all()
    feats.square().mean().backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def test_bad_input_shapes_name_the_problem(clip):
    model = CLIPViT(model=clip)
    with pytest.raises(ValueError, match=r'input \(2, 3, 64, 70\) has W not divisible'):
        model.encode_dense(torch.randn(2, 3, 64, 70))
    with pytest.raises(ValueError, match=r'expected images \(B, 3, H, W\), got \(3, 64, 64\)'):
        model.encode_dense(torch.randn(3, 64, 64))
    with pytest.raises(KeyError, match='known:'):
        denseclip.build_dense_clip('ViT-B-16', pretrained=None, method='sclipp')


def test_resnet_dense_is_the_attention_pools_value_path():
    from conftest import OPENAI_RN

    clip = make_clip(OPENAI_RN)
    images = torch.randn(2, 3, 64, 96)
    model = denseclip.models.backbones.CLIPResNet(model=clip).eval()
    with torch.no_grad():
        visual = clip.visual
        x = visual.stem(images)
        for layer in (visual.layer1, visual.layer2, visual.layer3, visual.layer4):
            x = layer(x)
        pool = visual.attnpool  # MaskCLIP: v_proj then c_proj as 1x1 convs, no pos-embed
        v = F.conv2d(x, pool.v_proj.weight[:, :, None, None], pool.v_proj.bias)
        want = F.conv2d(v, pool.c_proj.weight[:, :, None, None], pool.c_proj.bias)
        got = model.encode_dense(images)
    assert got.shape == (2, 32, 2, 3)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert [f.shape[1] for f in model(images)] == [64, 128, 256, 512]


def test_build_dense_clip_loads_a_users_file_and_picks_the_methods_settings(tiny_vit):
    config, weights, clip = tiny_vit
    model = denseclip.build_dense_clip(config, pretrained=weights, method='naclip')
    assert type(model.dense).__name__ == 'NACLIPAttention'
    assert model.pos_interp == 'scale_factor' and not model.training
    images = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_dense(images),
                                   reference_dense(clip, images, 'naclip'), rtol=1e-5, atol=1e-5)
    override = denseclip.build_dense_clip(config, pretrained=weights, method='naclip',
                                          pos_interp='size')
    assert override.pos_interp == 'size'
    with pytest.raises(ValueError, match="a ResNet CLIP supports \\('vanilla', 'maskclip'\\)"):
        denseclip.build_dense_clip('RN50', pretrained=None, method='sclip')
