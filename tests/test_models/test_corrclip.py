"""CorrCLIP against a transcription of the released forward (zdk258/CorrCLIP@103bc18
CorrCLIPv1/open_clip/transformer.py ``VisionTransformer.forward``: MCTs concatenated to the
sequence under the released attention mask, scikit-learn's DBSCAN, the scope rule, the three
branches), the mask generators and their disk cache, the composition with NACLIP, and the
configs."""
from __future__ import annotations

import copy
import json
import logging
import os
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_VIT, make_clip
from mmengine.config import Config
from mmseg.structures import SegDataSample
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from sklearn.cluster import DBSCAN
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models.vision_transformer import VisionTransformer

from denseclip.apis import known_methods
from denseclip.apis.dense_clip import dense_method_kwargs
from denseclip.clip import WeightsNotFoundError
from denseclip.models import masks as masks_mod
from denseclip.models.backbones import CLIPViT, DINOProxy
from denseclip.models.dense import neighbourhood_prior
from denseclip.models.dense.corrclip import (
    CorrCLIPAttention,
    CorrCLIPSegmentor,
    CorrScopeAttention,
    connected_components,
    corr_scope,
    map_correction,
    merge_regions,
)
from denseclip.models.masks import MaskCache, SAMMaskGenerator, SuperpixelMaskGenerator, region_map
from denseclip.models.segmentors import slide_windows

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
TINY4 = copy.deepcopy(TINY_VIT)
TINY4['vision_cfg'].update(layers=4)
CLIP_MEAN = torch.tensor(OPENAI_DATASET_MEAN).view(3, 1, 1)
CLIP_STD = torch.tensor(OPENAI_DATASET_STD).view(3, 1, 1)
H, W = 48, 80  # H != W: a 3 x 5 CLIP grid, a 6 x 10 DINO grid


@pytest.fixture(scope='module')
def clip():
    return make_clip(TINY4)


def tiny_dino(seed=0, size=(H, W)):
    """A random timm ViT with 8-pixel patches at the test's own size (no position resize)."""
    torch.manual_seed(seed)
    return VisionTransformer(img_size=size, patch_size=8, embed_dim=32, depth=2, num_heads=2,
                             num_classes=0).eval()


def region_labels():
    """(2, H, W): three regions and unsegmented pixels in each image, different per image."""
    m = torch.zeros(2, H, W, dtype=torch.long)
    m[:, :24, :40] = 1
    m[:, 24:, 48:] = 2
    m[0, :, 64:] = 3
    m[1, 8:40, 16:32] = 4
    return m


# ---------------------------------------------------------------- the released forward
def released_forward(clip, vit, images, masks, num_spatial, tau=0.25, eps=0.2, alpha=1.0,
                     beta=0.5):
    """corrclip_segmentor.py ``forward_feature`` + transformer.py ``forward``, one image at a
    time (the released semantic branch takes ``masks[0]``), batch-first open_clip blocks."""
    out = []
    for b in range(images.shape[0]):
        img = images[b:b + 1]
        # forward_feature: re-normalise, hook the last block's qkv, q + k, drop [CLS], normalise
        pixels = img * CLIP_STD + CLIP_MEAN
        dino_in = (pixels - torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1)) / torch.tensor(
            IMAGENET_DEFAULT_STD).view(3, 1, 1)
        seen = {}
        hook = vit.blocks[-1].attn.qkv.register_forward_hook(
            lambda m, i, o: seen.__setitem__('qkv', o))
        vit.forward_features(dino_in)
        hook.remove()
        feat_shape = (H // 8, W // 8)
        qkv = seen['qkv'].reshape(1, -1, 3, seen['qkv'].shape[-1] // 3).permute(2, 0, 1, 3)
        dino_feats = F.normalize((qkv[0] + qkv[1])[:, 1:], dim=-1)
        # VisionTransformer.forward
        model = CLIPViT(model=clip, pos_interp='scale_factor')
        x, token_size = model.embed(img)  # (1, 1+N, D) after ln_pre
        blocks = clip.visual.transformer.resblocks
        num_layers = len(blocks)
        similarity = torch.einsum('bmc,bnc->bmn', dino_feats, dino_feats)
        m = F.interpolate(masks[b:b + 1, None].float(), size=feat_shape,
                          mode='nearest').int().squeeze(1)
        df = dino_feats.reshape(1, *feat_shape, -1)
        mask_values = torch.unique(m[0])
        if mask_values.shape[0] > 2:
            region_masks = [idx == m[0] for idx in mask_values]
            inst = torch.stack([df[0][r].mean(dim=0) for r in region_masks])
            inst = F.normalize(inst, dim=1)[1:]
            inst_sim = inst @ inst.T
            cluster = DBSCAN(metric='precomputed', eps=eps, min_samples=1).fit_predict(
                (inst_sim.max() - inst_sim).numpy())
            for idx, c in enumerate(cluster, start=1):
                if c != -1:
                    m[0][region_masks[idx]] = int(c) + 10000
        region_masks = [(idx == m[0]).view(-1) for idx in torch.unique(m[0])]
        equal = torch.zeros_like(similarity[0]).bool()
        for r in region_masks[1:]:
            equal += torch.outer(r, r)
        r0 = region_masks[0]
        equal += (r0.unsqueeze(0) + r0.unsqueeze(1)) * (similarity[0] > similarity[0].mean())
        similarity[0][~equal] = float('-inf')
        attn_weights = (similarity / tau).softmax(dim=-1)
        # semantic branch's mask
        mt = F.interpolate(m.float().unsqueeze(1), size=token_size, mode='nearest').int()
        mt = mt.squeeze(1)[0]
        rm = [idx == mt for idx in torch.unique(mt)]
        mct = x[:, :1].repeat(1, len(rm), 1)
        R = mct.shape[1]
        x = torch.cat([mct, x], dim=1)
        allow = torch.zeros((x.shape[1], x.shape[1])).bool()
        allow[R:, R:] = True
        allow[:R, R] = True
        allow[:R, R + 1:] = torch.stack(rm).view(R, -1)
        # open_clip 3.x turns a bool mask into 0/1 floats: give it the additive form
        attn_mask = torch.zeros(allow.shape).masked_fill(~allow, float('-inf'))
        feats_spatial = []
        for idx, blk in enumerate(blocks[:-1]):
            x = blk(x, attn_mask=attn_mask)
            if num_layers - 2 - num_spatial <= idx <= num_layers - 3:
                feats_spatial.append(x[:, R:])
        blk = blocks[-1]
        xms = torch.cat([x[:, R:], torch.stack(feats_spatial).mean(0)], dim=0)  # (2, 1+N, D)
        D = blk.attn.embed_dim
        v = F.linear(blk.ln_1(xms), blk.attn.in_proj_weight[2 * D:], blk.attn.in_proj_bias[2 * D:])
        v = v[:, 1:].transpose(1, 2).unflatten(2, token_size)
        v = F.interpolate(v, size=feat_shape, mode='bilinear', align_corners=False)
        v = v.flatten(2).transpose(1, 2)
        xms = blk.attn.out_proj(attn_weights.expand(2, -1, -1) @ v)  # (2, IJ, D)
        mct = blk(x, attn_mask=attn_mask)[0, :R]
        expand = F.interpolate(torch.stack(rm)[:, None].float(), size=feat_shape,
                               mode='nearest').flatten(1)
        sem = expand.T @ mct
        post = clip.visual.ln_post
        f = post(xms[0]) + alpha * post(xms[1]) + beta * post(sem)
        out.append((f @ clip.visual.proj).T.reshape(-1, *feat_shape))
    return torch.stack(out)


def corrclip_model(clip, vit, **kwargs):
    model = CLIPViT(model=clip, pos_interp='scale_factor').eval()
    model.dense = CorrCLIPAttention(proxy=DINOProxy(model=vit), **kwargs).eval()
    return model


@pytest.mark.parametrize('num_spatial', [1, 2])
def test_dense_features_match_the_released_forward(clip, num_spatial):
    vit = tiny_dino()
    images = torch.randn(2, 3, H, W, generator=torch.Generator().manual_seed(3))
    masks = region_labels()
    # eps 0.2 merges nothing among random features, 1.0 merges some: both paths run
    for eps in (0.2, 1.0):
        model = corrclip_model(clip, vit, num_spatial=num_spatial, merge_eps=eps)
        with torch.no_grad(), model.dense.use_masks(masks):
            got = model.encode_dense(images)
            want = released_forward(clip, vit, images, masks, num_spatial, eps=eps)
        assert got.shape == (2, TINY4['embed_dim'], H // 8, W // 8)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_each_branch_changes_the_features(clip):
    vit = tiny_dino()
    images = torch.randn(1, 3, H, W, generator=torch.Generator().manual_seed(4))
    masks = region_labels()[:1]

    def run(**kwargs):
        model = corrclip_model(clip, vit, num_spatial=2, **kwargs)
        with torch.no_grad(), model.dense.use_masks(masks):
            return model.encode_dense(images)

    full = run()
    for kwargs in (dict(alpha=0.0), dict(beta=0.0), dict(tau=1.0), dict(merge_eps=1.0)):
        assert not torch.allclose(run(**kwargs), full), kwargs
    # random features are far apart: at ε = 0.2 no region merges
    torch.testing.assert_close(run(merge_eps=None), full)
    # without masks the scope is everything above the mean: the regions matter
    model = corrclip_model(clip, vit, num_spatial=2)
    with torch.no_grad(), model.dense.use_masks(torch.zeros_like(masks)):
        assert not torch.allclose(model.encode_dense(images), full)


def test_scope_rule():
    regions = torch.tensor([[1, 1, 2, 0, 0]])
    sim = torch.tensor([[[1.0, 0.9, 0.0, 0.8, 0.0],
                         [0.9, 1.0, 0.0, 0.0, 0.0],
                         [0.0, 0.0, 1.0, 0.0, 0.7],
                         [0.8, 0.0, 0.0, 1.0, 0.9],
                         [0.0, 0.0, 0.7, 0.9, 1.0]]])
    # mean(S) = 11.4 / 25 = 0.456: pairs with an unsegmented patch need S > 0.456
    want = torch.tensor([[1, 1, 0, 1, 0],
                         [1, 1, 0, 0, 0],
                         [0, 0, 1, 0, 1],
                         [1, 0, 0, 1, 1],
                         [0, 0, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(corr_scope(regions, sim)[0], want)


def test_merge_equals_dbscan():
    g = torch.Generator().manual_seed(0)
    for trial in range(5):
        R, N = 7, 60
        regions = torch.randint(0, R + 1, (1, N), generator=g)
        feats = F.normalize(torch.randn(1, N, 3, generator=g), dim=-1)
        got = merge_regions(regions, feats, eps=0.3)[0]
        values = [v for v in torch.unique(regions[0]).tolist() if v != 0]
        means = F.normalize(torch.stack([feats[0][regions[0] == v].mean(0) for v in values]), dim=1)
        s = means @ means.T
        labels = DBSCAN(metric='precomputed', eps=0.3, min_samples=1).fit_predict(
            (s.max() - s).numpy())
        want = torch.zeros(N, dtype=torch.long)
        for v, c in zip(values, labels):
            want[regions[0] == v] = int(c) + 1
        # the same partition, unsegmented patches kept at 0
        assert torch.equal(got == 0, regions[0] == 0)
        pairs_got = got[:, None] == got[None, :]
        pairs_want = want[:, None] == want[None, :]
        assert torch.equal(pairs_got, pairs_want)


def test_connected_components():
    adj = torch.zeros(5, 5, dtype=torch.bool)
    adj[0, 3] = adj[3, 0] = adj[3, 4] = adj[4, 3] = True
    assert connected_components(adj).tolist() == [0, 1, 2, 0, 0]


def test_map_correction():
    labels = torch.tensor([[1, 1, 2, 5],
                           [1, 2, 2, 5],
                           [3, 3, 4, 4]])
    regions = torch.tensor([[1, 1, 2, 0],
                            [1, 1, 2, 0],
                            [3, 3, 3, 3]])
    want = torch.tensor([[1, 1, 2, 5],  # region 1: three 1s, one 2; 0 is kept
                         [1, 1, 2, 5],
                         [3, 3, 3, 3]])  # region 3: a tie 3/4 goes to the smaller label
    assert torch.equal(map_correction(labels, regions), want)
    with pytest.raises(ValueError, match='differ in size'):
        map_correction(labels, regions[:2])


# ---------------------------------------------------------------- composition
def test_mask_scope_under_naclip_equals_the_explicit_computation(clip):
    images = torch.randn(2, 3, H, W, generator=torch.Generator().manual_seed(5))
    masks = region_labels()
    plain = CLIPViT(model=clip, pos_interp='scale_factor', dense=dict(type='NACLIPAttention'))
    scoped = CLIPViT(model=clip, pos_interp='scale_factor',
                     dense=dict(type='CorrScopeAttention',
                                attention=dict(type='NACLIPAttention')))
    with torch.no_grad():
        want_plain = plain.encode_dense(images)
        with scoped.dense.use_masks(masks):
            got = scoped.encode_dense(images)
        # explicit: NACLIP's softmax(s k kᵀ + Ω) with −inf outside Ω_corr on the patches
        tokens, grid = plain.trunk(images)
        block = clip.visual.transformer.resblocks[-1]
        D, nh = tokens[-1].shape[-1], block.attn.num_heads
        qkv = F.linear(block.ln_1(tokens[-1]), block.attn.in_proj_weight,
                       block.attn.in_proj_bias)
        q, k, v = (t.reshape(2, -1, nh, D // nh).transpose(1, 2) for t in qkv.chunk(3, -1))
        f = F.normalize(qkv[:, 1:, :D] + qkv[:, 1:, D:2 * D], dim=-1)  # q + k, heads merged
        s = f @ f.transpose(1, 2)
        r = F.interpolate(masks[:, None].float(), size=grid, mode='nearest').flatten(1).long()
        unseg = r == 0
        allow = ((r[:, :, None] == r[:, None, :]) & ~unseg[:, :, None]) | (
            (unseg[:, :, None] | unseg[:, None, :]) & (s > s.mean(dim=(1, 2), keepdim=True)))
        allow = F.pad(allow | torch.eye(r.shape[1], dtype=torch.bool), (1, 0, 1, 0), value=True)
        logits = k @ k.transpose(-2, -1) * (D // nh) ** -0.5 + neighbourhood_prior(grid)
        attn = logits.masked_fill(~allow[:, None], float('-inf')).softmax(-1)
        z = block.attn.out_proj((attn @ v).transpose(1, 2).reshape(2, -1, D))[:, 1:]  # reduced
        want = clip.visual.ln_post(z) @ clip.visual.proj
        want = want.transpose(1, 2).reshape(2, -1, *grid)
    assert not torch.allclose(got, want_plain, atol=1e-3)  # the scope changes NACLIP
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # one region covering everything leaves NACLIP as it is
    with torch.no_grad(), scoped.dense.use_masks(torch.ones_like(masks)):
        torch.testing.assert_close(scoped.encode_dense(images), want_plain, rtol=1e-4,
                                   atol=1e-5)


def test_scope_wrapper_refuses_attentions_without_softmax_terms():
    with pytest.raises(TypeError, match='score_terms'):
        CorrScopeAttention(attention=dict(type='MaskCLIPAttention'))


# ---------------------------------------------------------------- bad input
def test_clear_errors(clip):
    vit = tiny_dino()
    model = corrclip_model(clip, vit, num_spatial=2)
    images = torch.randn(2, 3, H, W)
    with pytest.raises(ValueError, match='no region masks'):
        model.encode_dense(images)
    with pytest.raises(ValueError, match='1 region masks for 2 images'):
        with model.dense.use_masks(region_labels()[:1]):
            model.encode_dense(images)
    with pytest.raises(ValueError, match=r'expected \(B, H, W\)'):
        with model.dense.use_masks(torch.zeros(H, W)):
            pass
    deep = corrclip_model(clip, vit, num_spatial=3)
    with pytest.raises(ValueError, match='num_spatial=3 for a tower of 4 blocks'):
        with deep.dense.use_masks(region_labels()):
            deep.encode_dense(images)
    with pytest.raises(TypeError, match='forward_qk'):
        CorrCLIPAttention(proxy=nn_identity())
    with pytest.raises(TypeError, match='no single pre-ln_post map'):
        with model.dense.use_masks(region_labels()):
            model(images)


def nn_identity():
    return torch.nn.Identity()


# ---------------------------------------------------------------- the segmentor
def segmentor(clip, **kwargs):
    torch.manual_seed(0)
    cfg = dict(backbone=dict(type='CLIPViT', model=clip, pos_interp='scale_factor',
                             dense=dict(type='CorrCLIPAttention', proxy=DINOProxy(
                                 model=tiny_dino(size=(32, 32))), num_spatial=2)),
               mask_generator=dict(type='SuperpixelMaskGenerator', cache_dir=False),
               vocabulary=['red', 'green', 'blue'], templates='{}', slide_crop=48,
               slide_stride=32, pad_to_patch=True, pad_multiple=16)
    cfg.update(kwargs)
    return CorrCLIPSegmentor(**cfg).eval()


def test_windows_receive_their_crop_of_the_image_map(clip):
    seg = segmentor(clip)
    image = torch.randn(1, 3, 40, 100, generator=torch.Generator().manual_seed(6))
    seen = []
    use_masks = seg.backbone.dense.use_masks
    seg.backbone.dense.use_masks = lambda m: (seen.append(m.clone()), use_masks(m))[1]
    regions = seg.regions_of(image)
    logits = seg.inference(image, (40, 100))
    crops = [regions[y1:y2, x1:x2] for y1, y2, x1, x2 in slide_windows(40, 100, 48, 32)]
    got = [m for batch in seen for m in batch]
    assert len(got) == len(crops)
    for window, crop in zip(got, crops):
        # 40 x 48 windows, padded as the segmentor pads them (to 48 x 48, centred): label -1
        assert window.shape == (48, 48)
        assert (window[:4] == -1).all() and (window[44:] == -1).all()
        assert torch.equal(window[4:44], crop)
    # masks smaller than the input are padded the same way by the attention
    dense = seg.backbone.dense
    with dense.use_masks(crops[0][None]):
        m = dense.window_masks(torch.zeros(1, 3, 48, 48))
    assert torch.equal(m[0], got[0])
    probs, labels = seg.postprocess(logits[0])
    # map correction: one label per region (superpixels cover every pixel)
    for r in torch.unique(regions):
        assert len(torch.unique(labels[regions == r])) == 1
    seg.map_correction = False
    _, raw = seg.postprocess(logits[0])
    assert torch.equal(map_correction(raw, regions), labels)


def test_predict_and_resized_outputs(clip):
    image = torch.randn(1, 3, 48, 80, generator=torch.Generator().manual_seed(7))
    preds = {}
    for dtype in ('fp32', 'bf16'):
        seg = segmentor(clip, dtype=dtype)
        sample = SegDataSample(metainfo=dict(ori_shape=(30, 70), img_shape=(48, 80)))
        preds[dtype] = seg.predict(image, [sample])[0].pred_sem_seg.data
        assert preds[dtype].shape == (1, 30, 70) and preds[dtype].max() < 3
    assert (preds['fp32'] == preds['bf16']).float().mean() > 0.9


def test_segmentor_errors(clip):
    with pytest.raises(ValueError, match='refiner'):
        segmentor(clip, refiner=dict(type='PAMRRefiner'))
    with pytest.raises(TypeError, match='takes no region masks'):
        segmentor(clip, backbone=dict(type='CLIPViT', model=clip))
    seg = segmentor(clip)
    with pytest.raises(ValueError, match=r'one \(1, 3, H, W\) image'):
        seg.inference(torch.zeros(2, 3, 32, 32), (32, 32))
    seg._regions = None
    with pytest.raises(RuntimeError, match='call inference'):
        seg.postprocess(torch.zeros(3, 8, 8))


def test_pixels_for_the_mask_generator_are_the_loaded_ones(clip):
    seg = segmentor(clip)
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    pre = seg.data_preprocessor
    x = (torch.from_numpy(rgb).permute(2, 0, 1).float() - pre.mean) / pre.std
    assert np.array_equal(seg.image_pixels(x[None]), rgb)


# ---------------------------------------------------------------- masks and the cache
def test_region_map_rule():
    a = np.zeros((4, 4), bool)
    a[:2, :2] = True  # area 4
    b = np.zeros((4, 4), bool)
    b[:3, :3] = True  # area 9: painted later, wins the overlap
    c = np.zeros((4, 4), bool)
    c[3, 3] = True  # area 1: region 1
    got = region_map([b, a, c], (4, 4))
    want = np.array([[3, 3, 3, 0], [3, 3, 3, 0], [3, 3, 3, 0], [0, 0, 0, 1]])
    assert np.array_equal(got, want) and got.dtype == np.int32
    assert np.array_equal(region_map([], (2, 3)), np.zeros((2, 3), np.int32))


def toy_scene(size=64):
    from denseclip.toy.world import generate_scene, scene_seed

    return generate_scene(scene_seed(0, 0), size).image


def test_superpixels_cover_every_pixel_deterministically():
    image = toy_scene()
    gen = SuperpixelMaskGenerator(cache_dir=False)
    a, b = gen(image), gen(image)
    assert np.array_equal(a, b) and a.min() >= 1 and len(np.unique(a)) > 3
    with pytest.raises(ValueError, match=r'\(H, W, 3\) uint8'):
        gen(image.astype(np.float32))


def test_cache_hit_miss_and_key(tmp_path):
    image = toy_scene()
    calls = []
    gen = SuperpixelMaskGenerator(cache_dir=tmp_path)
    generate = gen.generate
    gen.generate = lambda img: (calls.append(1), generate(img))[1]
    first = gen(image)
    second = gen(image)
    assert np.array_equal(first, second) and len(calls) == 1
    assert (gen.cache.hits, gen.cache.misses) == (1, 1)
    files = list(tmp_path.rglob('*.npz'))
    assert len(files) == 1 and not list(tmp_path.rglob('*.tmp'))
    # other settings: another key, another file
    other = SuperpixelMaskGenerator(scale=50.0, cache_dir=tmp_path)
    assert other.cache.dir != gen.cache.dir
    other(image)
    assert len(list(tmp_path.rglob('*.npz'))) == 2
    # another image: a miss
    gen(image[::-1].copy())
    assert len(calls) == 2


def test_corrupt_or_stale_cache_entries_are_regenerated(tmp_path, caplog):
    image = toy_scene()
    gen = SuperpixelMaskGenerator(cache_dir=tmp_path)
    want = gen(image)
    path = next(tmp_path.rglob('*.npz'))
    path.write_bytes(b'not a zip')
    with caplog.at_level(logging.WARNING):
        assert np.array_equal(gen(image), want)
    assert 'unreadable or stale' in caplog.text
    assert np.array_equal(np.load(path)['regions'], want)  # rewritten whole
    # an entry of the wrong shape (same name) is not trusted either
    np.savez(path, regions=np.zeros((3, 3), np.int32), settings=np.array(gen.cache.settings_json))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert np.array_equal(gen(image), want)
    assert 'the image is (64, 64)' in caplog.text


def test_cache_writes_are_atomic(tmp_path, monkeypatch):
    cache = MaskCache(tmp_path, dict(type='x'))
    calls = []
    import denseclip.engine.checkpoint as ckpt

    real = ckpt.atomic_replace
    monkeypatch.setattr(ckpt, 'atomic_replace', lambda t, f: (calls.append((t, f)), real(t, f)))
    final = cache.save('k', np.ones((2, 2), np.int32))
    assert calls and Path(calls[0][1]) == final and Path(calls[0][0]).parent == final.parent
    # a write that fails leaves neither a partial file nor the temporary
    monkeypatch.setattr(np, 'savez_compressed', lambda *a, **k: (_ for _ in ()).throw(
        OSError('disk full')))
    with pytest.raises(OSError, match='disk full'):
        cache.save('j', np.ones((2, 2), np.int32))
    assert not cache.path('j').exists() and not list(tmp_path.rglob('*.tmp'))


def small_sam():
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    torch.manual_seed(0)
    size, dim = 128, 32
    return Sam(
        image_encoder=ImageEncoderViT(depth=1, embed_dim=32, img_size=size, mlp_ratio=2,
                                      norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                                      num_heads=2, patch_size=16, qkv_bias=True,
                                      use_rel_pos=True, global_attn_indexes=(0,),
                                      window_size=4, out_chans=dim),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(8, 8),
                                     input_image_size=(size, size), mask_in_chans=8),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(
            depth=1, embedding_dim=dim, mlp_dim=dim, num_heads=2), transformer_dim=dim,
            iou_head_depth=2, iou_head_hidden_dim=dim),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375]).eval()


def test_sam_generator_with_a_small_sam(tmp_path):
    sam = small_sam()
    gen = SAMMaskGenerator(backend='sam', sam_type=sam, points_per_side=4, points_per_batch=4,
                           pred_iou_thresh=-10.0, stability_score_thresh=-10.0, device='cpu',
                           cache_dir=tmp_path)
    assert gen.backend == 'sam'
    image = toy_scene(48)
    records = gen._generator.generate(image)
    want = region_map([r['segmentation'] for r in records], (48, 48))
    assert len(records) > 0
    assert np.array_equal(gen(image), want)
    assert np.array_equal(gen(image), want) and gen.cache.hits == 1
    settings = gen.settings()
    assert settings['points_per_side'] == 4 and settings['backend'] == 'sam'
    other = SAMMaskGenerator(backend='sam', sam_type=sam, points_per_side=8, device='cpu',
                             cache_dir=tmp_path)
    assert other.cache.dir != gen.cache.dir


def test_sam_generator_errors(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="sam_checkpoint='/path/to/sam_vit_h"):
        SAMMaskGenerator(backend='sam')
    with pytest.raises(WeightsNotFoundError, match='no such file'):
        SAMMaskGenerator(backend='sam', sam_checkpoint=str(tmp_path / 'missing.pth'))
    with pytest.raises(ValueError, match="backend='sam3'"):
        SAMMaskGenerator(backend='sam3')
    if not masks_mod.sam2_available():
        with pytest.raises(ImportError, match='sam2 package'):
            SAMMaskGenerator(backend='sam2')
        assert SAMMaskGenerator(backend='auto', sam_type=small_sam()).backend == 'sam'


# ---------------------------------------------------------------- configs and the API
LEAVES = sorted(p.relative_to(CONFIGS).as_posix() for p in (CONFIGS / 'corrclip').glob('*.py'))
EXPECTED = {  # leaf: (S, prob_thd, slide_crop, published mIoU in the header)
    'voc21': (336, 0.2, 336, '74.8'), 'context60': (336, 0.15, 336, '44.2'),
    'coco-object': (336, 0.25, 336, '43.7'), 'voc20': (336, 0.0, 336, '88.8'),
    'context59': (336, 0.0, 336, '48.8'), 'coco-stuff171': (336, 0.0, 336, '31.6'),
    'cityscapes': (448, 0.0, 224, '49.4'), 'ade20k': (448, 0.0, 336, '26.9')}


def test_the_grid_is_complete():
    assert set(LEAVES) == {f'corrclip/corrclip_vit-b16_{d}.py' for d in EXPECTED} | {
        'corrclip/corrclip_toy-vit-p16_toy.py'}


@pytest.mark.parametrize('dataset', sorted(EXPECTED))
def test_benchmark_settings(dataset):
    leaf = CONFIGS / f'corrclip/corrclip_vit-b16_{dataset}.py'
    cfg = Config.fromfile(str(leaf))
    S, thd, crop, published = EXPECTED[dataset]
    resize = next(s for s in cfg.test_pipeline if s['type'] == 'Resize')
    assert resize['scale'] == (2048, S)
    assert (cfg.model.prob_thd, cfg.model.slide_crop, cfg.model.slide_stride) == (thd, crop, 112)
    assert f'Published mIoU: {published}' in leaf.read_text()
    assert os.path.isfile(cfg.model.vocabulary)
    dense = cfg.model.backbone.dense
    assert (dense.tau, dense.merge_eps, dense.alpha, dense.beta, dense.num_spatial) == (
        0.25, 0.2, 1.0, 0.5, 5)
    assert cfg.model.backbone.model == 'ViT-B-16-quickgelu'
    assert cfg.model.mask_generator.pred_iou_thresh == 0.4
    assert cfg.model.name_sep == '; ' and cfg.model.logit_scale == 40.0


def test_the_api_knows_the_method():
    assert 'corrclip' in known_methods()
    kwargs = dense_method_kwargs('corrclip', proxy=dict(type='DINOProxy', pretrained='/x'))
    assert kwargs['dense']['type'] == 'CorrCLIPAttention'
    assert kwargs['dense']['proxy'] == dict(type='DINOProxy', pretrained='/x')


def test_the_api_segments_with_corrclip(tmp_path):
    from denseclip.apis import OpenVocabSegmenter

    config = tmp_path / 'tiny4.json'
    config.write_text(json.dumps(TINY4))
    torch.manual_seed(0)
    seg = OpenVocabSegmenter(method='corrclip', model=str(config), pretrained=None,
                             proxy=dict(type='DINOProxy', model=tiny_dino(size=(32, 32))),
                             mask_generator=dict(type='SuperpixelMaskGenerator',
                                                 cache_dir=False),
                             short_side=48, templates='{}')
    seg.segmentor.backbone.dense.num_spatial = 2  # the tiny CLIP has 4 blocks
    result = seg(toy_scene(64), classes=['red circle', 'sky', 'grass'])
    assert result.labels.shape == (64, 64)
