"""Region tokens against an explicit masked attention; the dilated ResNet against the strided one;
heat-map painting by hand."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from denseclip.models.backbones import CLIPResNet, CLIPViT
from denseclip.models.grounding import (OUTSIDE, DenseHeatmap, RegionTokenHeatmap, dense_stem,
                                        dilated_resnet_features, paint_heatmap,
                                        region_token_embeddings, region_token_update,
                                        slic_regions)
from conftest import OPENAI_RN, TINY_VIT, make_clip


@pytest.fixture(scope='module')
def vit():
    return CLIPViT(model=make_clip(TINY_VIT)).eval()


def explicit_region_forward(vit, images, outside):
    """The released forward (spatial_vit.py@d2026f3), written with nn.MultiheadAttention and
    the full (M, N+M) additive mask: -100 outside the region and on the other region tokens."""
    x, _ = dense_stem(vit, images)
    M = outside.shape[0]
    mask = torch.cat([outside.float(), 1 - torch.eye(M)], dim=1) * OUTSIDE  # (M, N+M)
    g = x[:, :1].repeat(1, M, 1)
    for block in vit.blocks:
        src = block.ln_1(torch.cat([x[:, 1:], g], dim=1))
        g = g + block.attn(src[:, -M:], src, src, need_weights=False, attn_mask=mask)[0]
        g = g + block.mlp(block.ln_2(g))
        x = block(x)
    return vit.visual.ln_post(g[0]) @ vit.visual.proj


def test_dense_stem_halves_the_stride_and_doubles_the_position_grid(vit):
    x, grid = dense_stem(vit, torch.randn(1, 3, 64, 64))
    assert grid == (8, 8) and x.shape == (1, 65, 64)  # 64 px, patch 16 at stride 8
    pos = vit.visual.positional_embedding[1:].T.reshape(1, 64, 4, 4)
    up = F.interpolate(pos, scale_factor=2, mode='bilinear', align_corners=False)
    conv = vit.visual.conv1
    images = torch.randn(1, 3, 64, 64)
    patches = F.conv2d(images, conv.weight, stride=8, padding=7).flatten(2).transpose(1, 2)
    want = vit.visual.ln_pre(torch.cat([vit.visual.class_embedding.view(1, 1, -1),
                                         patches], 1)
                              + torch.cat([vit.visual.positional_embedding[:1],
                                           up.flatten(2)[0].T]))
    torch.testing.assert_close(dense_stem(vit, images)[0], want, rtol=1e-5, atol=1e-5)


def test_region_tokens_match_explicit_masked_attention(vit):
    torch.manual_seed(0)
    images = torch.randn(1, 3, 64, 64)
    # Two label maps (R=2): halves and a 3-region split with one region of a single pixel
    # (empty on the 8x8 grid: its token attends to itself only).
    a = torch.zeros(64, 64, dtype=torch.long)
    a[:, 32:] = 1
    b = torch.full((64, 64), 2, dtype=torch.long)
    b[:20] = 3
    b[63, 63] = 4
    regions = torch.stack([a, b])
    got = region_token_embeddings(vit, images, regions)
    on_grid = regions[:, ::8, ::8].flatten(1)  # nearest, as F.interpolate(mode='nearest')
    run = torch.tensor([0, 0, 1, 1, 1])
    outside = on_grid[run] != torch.arange(5)[:, None]
    assert outside[4].all()
    want = explicit_region_forward(vit, images, outside)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_region_token_update_is_batched_over_regions(vit):
    torch.manual_seed(1)
    block = vit.blocks[0]
    patches, regions = torch.randn(1, 10, 64), torch.randn(1, 4, 64)
    outside = torch.rand(4, 10) > 0.5
    together = region_token_update(block, patches, regions, outside)
    alone = torch.cat([region_token_update(block, patches, regions[:, i:i + 1], outside[i:i + 1])
                       for i in range(4)], dim=1)
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


def test_whole_image_region_token_is_not_the_plain_cls(vit):
    # A single region covering everything still differs from CLIP's [CLS] output (different
    # stem stride, no attention to [CLS]), but every pixel of the heat map is equal.
    images = torch.randn(1, 3, 64, 64)
    emb = region_token_embeddings(vit, images, torch.zeros(1, 64, 64, dtype=torch.long))
    assert emb.shape == (1, 32) and torch.isfinite(emb).all()


def test_paint_heatmap_by_hand():
    regions = torch.tensor([[[0, 0], [1, 1]], [[2, 3], [2, 3]]])
    scores = torch.tensor([0.3, 0.1, 0.2, 0.0])
    T = 0.1
    e = np.exp((np.array([0.3, 0.1, 0.2, 0.0]) - 0.3) / T)
    raw = np.array([[e[0] + e[2], e[0] + e[3]], [e[1] + e[2], e[1] + e[3]]]) / 2
    want = (raw - raw.min()) / (raw.max() - raw.min() + 1e-8)
    np.testing.assert_allclose(paint_heatmap(regions, scores, T).numpy(), want, rtol=1e-6)
    # cosines near 1 with T = 0.01 do not overflow
    assert torch.isfinite(paint_heatmap(regions, scores + 0.9, 0.01)).all()


def test_slic_regions_number_all_runs_consecutively():
    rgb = (np.random.default_rng(0).random((48, 40, 3)) * 255).astype(np.uint8)
    regions = slic_regions(rgb, [4, 9])
    assert regions.shape == (2, 48, 40)
    ids0, ids1 = regions[0].unique(), regions[1].unique()
    assert ids0.tolist() == list(range(len(ids0)))
    assert ids1.tolist() == list(range(len(ids0), len(ids0) + len(ids1)))


def test_region_token_heatmap_runs_at_non_square_sizes(vit):
    rgb = (np.random.default_rng(0).random((64, 80, 3)) * 255).astype(np.uint8)
    images = torch.randn(1, 3, 64, 80)
    text = F.normalize(torch.randn(32), dim=0)
    heat, score = RegionTokenHeatmap(n_segments=[5, 10])(vit, images, rgb, text)
    assert heat.shape == (64, 80) and float(heat.min()) == 0
    assert float(heat.max()) == pytest.approx(1)
    assert -1 <= score <= 1


@pytest.fixture(scope='module')
def resnet():
    return CLIPResNet(model=make_clip(OPENAI_RN)).eval()


def test_dilated_resnet_equals_strided_on_its_lattice(resnet):
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        dense, shift = dilated_resnet_features(resnet.visual, images)
        strided = resnet.stages(images)[-1]
    assert dense.shape[-2:] == (64, 96) and shift == 15
    torch.testing.assert_close(dense[..., ::32, ::32], strided, rtol=1e-4, atol=1e-5)


def test_dense_heatmap_stride_one_crops_around_receptive_fields(resnet):
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = DenseHeatmap(stride_one=True, pad=64).features(resnet, images)
        # padding the image by 64 then cropping at 64 - 15 is the dilated net's output on the
        # padded image, shifted so that position p is centred on pixel p
        full, _ = dilated_resnet_features(resnet.visual, F.pad(images, (64,) * 4))
        pool = resnet.visual.attnpool
        want = F.linear(F.linear(full[..., 49:113, 49:113].permute(0, 2, 3, 1),
                                 pool.v_proj.weight, pool.v_proj.bias),
                        pool.c_proj.weight, pool.c_proj.bias).permute(0, 3, 1, 2)
    assert feats.shape == (1, 32, 64, 64)
    torch.testing.assert_close(feats, want)


def test_dense_heatmap_baseline_upsamples_encode_dense(vit):
    images = torch.randn(1, 3, 64, 64)
    text = F.normalize(torch.randn(32), dim=0)
    heat, score = DenseHeatmap(temperature=0.03)(vit, images, None, text)
    feats = F.interpolate(vit.encode_dense(images), size=(64, 64), mode='bilinear',
                          align_corners=False)
    cos = torch.einsum('ehw,e->hw', F.normalize(feats[0], dim=0), text)
    torch.testing.assert_close(heat, ((cos - cos.max()) / 0.03).exp())
    assert score == pytest.approx(float(cos.max()))
    with pytest.raises(TypeError, match='CLIPResNet'):
        DenseHeatmap(stride_one=True).features(vit, images)
