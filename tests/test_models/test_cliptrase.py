"""CLIPtrase against independent computations written from the released code's equations.

References read q, k, v straight from ``in_proj_weight``, form every map explicitly, and loop
over heads with ``torch.cosine_similarity`` as attn2.py does.
"""
from __future__ import annotations

import types

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F
from conftest import TINY_VIT, make_clip

from denseclip.models.backbones import CLIPViT
from denseclip.apis.dense_clip import dense_method_kwargs
from denseclip.models.dense import cliptrase, cliptrase_correlation
from denseclip.models.dense.cliptrase import (CLIPtraseRegionRefiner, cluster_regions,
                                              dbscan_labels, median_filter2d, region_mean,
                                              region_vote, relabel_logits)

SIZES = [(64, 64), (48, 80)]


@pytest.fixture(scope='module')
def clip():
    return make_clip(TINY_VIT)


def _trunk(clip, images):
    """Tokens entering each block, with DINO's +0.1 pos-embed resize written out."""
    visual = clip.visual
    B = images.shape[0]
    h, w = images.shape[2] // 16, images.shape[3] // 16
    pos = visual.positional_embedding
    if (h, w) != tuple(visual.grid_size):
        h0, w0 = visual.grid_size
        grid = pos[1:].reshape(1, h0, w0, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((h + 0.1) / h0, (w + 0.1) / w0), mode='bicubic')
        pos = torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(h * w, -1)])
    x = visual.conv1(images).flatten(2).transpose(1, 2)
    x = visual.ln_pre(torch.cat([visual.class_embedding.expand(B, 1, -1), x], 1) + pos)
    inputs = [x]
    for block in visual.transformer.resblocks[:-1]:
        inputs.append(block(inputs[-1]))
    return inputs, (h, w)


def _qkv(block, x):
    attn = block.attn
    B, T, D = x.shape
    nh = attn.num_heads
    y = block.ln_1(x) @ attn.in_proj_weight.T + attn.in_proj_bias
    return [t.reshape(B, T, nh, D // nh).transpose(1, 2) for t in y.split(D, dim=-1)]


def _last_block(clip, x):
    """Block 12 of model.py with ``self_qk_weight``: three softmaxes summed, residual, FFN."""
    block = clip.visual.transformer.resblocks[-1]
    q, k, v = _qkv(block, x)
    B, T, D = x.shape
    s = q.shape[-1] ** -0.5
    A = sum(torch.softmax(s * t @ t.transpose(-1, -2), -1) for t in (q, k, v))
    z = x + block.attn.out_proj((A @ v).transpose(1, 2).reshape(B, T, D))
    return z + block.mlp(block.ln_2(z))


@pytest.mark.parametrize('size', SIZES)
def test_last_block_matches_the_three_softmax_equation(clip, size):
    images = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    model = CLIPViT(model=clip, **dense_method_kwargs('cliptrase')).eval()
    with torch.no_grad():
        inputs, grid = _trunk(clip, images)
        z = _last_block(clip, inputs[-1])
        want = (clip.visual.ln_post(z[:, 1:]) @ clip.visual.proj).transpose(1, 2)
        got = model.encode_dense(images)
    torch.testing.assert_close(got, want.reshape(2, -1, *grid), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('size', SIZES)
def test_correlation_matches_an_explicit_per_head_loop(clip, size):
    images = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        inputs, _ = _trunk(clip, images)
        block = clip.visual.transformer.resblocks[-2]
        x = inputs[-2]  # tokens entering block L-1
        q, k, v = _qkv(block, x)
        B, nh, T, _ = q.shape
        want = torch.zeros(B, T - 1, T - 1)
        for b in range(B):
            m = torch.zeros(T, T)
            for head in range(nh):
                for t in (q, k, v):
                    m += torch.cosine_similarity(t[b, head, :, None], t[b, head, None], -1) / 3
            m /= nh
            w = m[1:, 1:] - m[0:1, 1:]  # the [CLS] row subtracted from every row
            w[w < 0] = 0
            want[b] = w
        got = cliptrase_correlation(block, x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert not torch.equal(got[0], got[1])  # per image, not image 0 for the whole batch


@pytest.mark.parametrize('shape', [(3, 9, 13), (2, 3, 5), (2, 84, 84)])
def test_median_filter_equals_scipy(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    want = np.stack([scipy.ndimage.median_filter(m, size=7) for m in x.numpy()])
    assert torch.equal(median_filter2d(x, 7), torch.from_numpy(want))


def _two_halves():
    """4x4 grid: W rows are the indicator of the patch's own half (columns 0-1 or 2-3)."""
    cols = torch.arange(16) % 4
    left = (cols < 2).float()
    return torch.where((cols < 2)[:, None], left[None], 1 - left[None])  # (16, 16)


def _noisy_logits():
    """Per-patch argmax: class 1 on the left (two patches say 2), class 0 on the right (one
    patch says 1)."""
    labels = torch.tensor([[1, 1, 0, 0], [1, 2, 0, 1], [2, 1, 0, 0], [1, 1, 0, 0]])
    return F.one_hot(labels, 3).permute(2, 0, 1).float() * 0.2 + 0.1  # (3, 4, 4)


def test_hand_made_clusters_vote_every_pixel_to_its_regions_majority():
    w = _two_halves()
    labels = dbscan_labels(w, eps=0.7, min_samples=3)
    assert labels.unique().tolist() == [0, 1]
    regions = cluster_regions(w, labels, (4, 4), (64, 64))
    want_regions = (torch.arange(64) >= 32).long().expand(64, 64)
    assert torch.equal(regions, want_regions)
    up = F.interpolate(_noisy_logits()[None], size=(64, 64), mode='bilinear')[0]
    assert (up.argmax(0) == 2).any()  # the noise survives upsampling ...
    voted = region_vote(up.argmax(0), regions, 3)
    assert torch.equal(voted, 1 - want_regions)  # ... and the vote removes it
    out = relabel_logits(up, voted, torch.arange(3))
    assert torch.equal(out.argmax(0), voted)
    torch.testing.assert_close(out.amax(0), up.amax(0))  # confidence kept, values permuted
    torch.testing.assert_close(out.sort(0).values, up.sort(0).values)


def test_vote_counts_classes_not_queries():
    # Queries 0 and 1 are background words (class 0), query 2 is class 1. One region:
    # 40% query 2, 30% query 0, 30% query 1: the class vote gives background.
    labels = torch.tensor([2] * 4 + [0] * 3 + [1] * 3).reshape(1, 10)
    query_to_class = torch.tensor([0, 0, 1])
    classes = query_to_class[labels]
    voted = region_vote(classes, torch.zeros_like(labels), 2)
    assert voted.unique().tolist() == [0]
    logits = F.one_hot(labels, 3).permute(2, 0, 1).float() + torch.rand(3, 1, 10) * 0.1
    out = relabel_logits(logits, voted, query_to_class)
    assert set(out.argmax(0).flatten().tolist()) <= {0, 1}
    best_bg = logits[:2].argmax(0)  # the pixel's own best background word wins
    assert torch.equal(out.argmax(0), best_bg)


def test_region_mean_is_the_d2_mean_of_logits_per_region():
    logits = torch.randn(3, 8, 8)
    regions = (torch.arange(8) >= 3).long().expand(8, 8)
    out = region_mean(logits, regions)
    for r in (0, 1):
        mask = regions == r
        want = logits[:, mask].mean(1, keepdim=True).expand(-1, int(mask.sum()))
        torch.testing.assert_close(out[:, mask], want)


def _dense(model, images):
    with torch.no_grad():
        return model.forward_dense(images)


def _classifier(clip, num_queries=3, seed=0):
    emb = F.normalize(torch.randn(num_queries, TINY_VIT['embed_dim'],
                                  generator=torch.Generator().manual_seed(seed)), dim=-1)
    return types.SimpleNamespace(embeddings=emb, query_to_class=torch.arange(num_queries))


def test_refiner_on_the_hand_made_example_end_to_end(clip, monkeypatch):
    model = CLIPViT(model=clip, **dense_method_kwargs('cliptrase')).eval()
    dense = _dense(model, torch.randn(1, 3, 64, 64))
    monkeypatch.setattr(cliptrase, 'cliptrase_correlation', lambda block, x: _two_halves()[None])
    refiner = CLIPtraseRegionRefiner(mode='vote', preset=224)
    refiner.set_classifier(_classifier(clip))
    logits = _noisy_logits()[None]
    with torch.no_grad():
        out = refiner(logits, dense, model)
    assert out.shape == (1, 3, 64, 64)
    want = 1 - (torch.arange(64) >= 32).long().expand(64, 64)
    assert torch.equal(out[0].argmax(0), want)
    mean = CLIPtraseRegionRefiner(mode='mean')
    mean.set_classifier(_classifier(clip))
    with torch.no_grad():
        out = mean(logits, dense, model)[0]
    assert out[:, :, :32].flatten(1).std(1).max() < 1e-6  # one logit vector per region
    assert torch.equal(out.argmax(0), want)


def test_no_cluster_returns_the_logits_unchanged(clip, monkeypatch):
    model = CLIPViT(model=clip, **dense_method_kwargs('cliptrase')).eval()
    dense = _dense(model, torch.randn(2, 3, 48, 80))
    far_apart = (10 * torch.eye(15)).expand(2, 15, 15)  # every row is DBSCAN noise
    monkeypatch.setattr(cliptrase, 'cliptrase_correlation', lambda block, x: far_apart)
    refiner = CLIPtraseRegionRefiner()
    refiner.set_classifier(_classifier(clip))
    logits = torch.randn(2, 3, 3, 5)
    assert refiner(logits, dense, model) is logits


def test_cls_product_multiplies_by_the_cls_cosine(clip, monkeypatch):
    model = CLIPViT(model=clip, **dense_method_kwargs('cliptrase')).eval()
    images = torch.randn(2, 3, 48, 80)
    dense = _dense(model, images)
    monkeypatch.setattr(cliptrase, 'cliptrase_correlation',
                        lambda block, x: (10 * torch.eye(15)).expand(2, 15, 15))
    classifier = _classifier(clip)
    refiner = CLIPtraseRegionRefiner(cls_product=True)
    refiner.set_classifier(classifier)
    logits = torch.randn(2, 3, 3, 5)
    with torch.no_grad():
        inputs, _ = _trunk(clip, images)
        cls = _last_block(clip, inputs[-1])[:, 0]
        cls = F.normalize(clip.visual.ln_post(cls) @ clip.visual.proj, dim=-1)
        want = logits * (cls @ classifier.embeddings.T)[:, :, None, None]
        got = refiner(logits, dense, model)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_one_big_cluster_gives_every_pixel_the_majority_class(clip):
    model = CLIPViT(model=clip, **dense_method_kwargs('cliptrase')).eval()
    dense = _dense(model, torch.randn(1, 3, 48, 80))
    refiner = CLIPtraseRegionRefiner(eps=1e6, min_samples=1)
    refiner.set_classifier(_classifier(clip, num_queries=4))
    logits = torch.randn(1, 4, 3, 5, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = refiner(logits, dense, model)
    up = F.interpolate(logits, size=(48, 80), mode='bilinear')[0].argmax(0)
    majority = torch.bincount(up.flatten(), minlength=4).argmax()
    assert out.shape == (1, 4, 48, 80) and (out[0].argmax(0) == majority).all()


def test_refiner_arguments_and_missing_vocabulary_are_reported(clip):
    assert CLIPtraseRegionRefiner(preset=336).eps == 1.1
    assert CLIPtraseRegionRefiner(preset=336).min_samples == 7
    assert CLIPtraseRegionRefiner(preset=224, eps=0.5).eps == 0.5
    with pytest.raises(KeyError, match=r'preset=300.*\[224, 336\]'):
        CLIPtraseRegionRefiner(preset=300)
    with pytest.raises(ValueError, match="mode='max'"):
        CLIPtraseRegionRefiner(mode='max')
    with pytest.raises(ValueError, match="clusterer='kmeans'"):
        CLIPtraseRegionRefiner(clusterer='kmeans')
    model = CLIPViT(model=clip, **dense_method_kwargs('cliptrase')).eval()
    dense = _dense(model, torch.randn(1, 3, 64, 64))
    with pytest.raises(RuntimeError, match='set_classifier'):
        CLIPtraseRegionRefiner()(torch.randn(1, 3, 4, 4), dense, model)
