"""The segmentor's second-wave slots: feature refiner (CLIP-DINOiser), patch refiner (CLIPtrase,
KSPD), per-window softmax averaging and ProxyCLIP's padding multiple. Each path is compared with
an independent computation written from the released code, on a tiny random CLIP."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_VIT, make_clip
from safetensors.torch import save_file
from timm.models.vision_transformer import VisionTransformer

import denseclip
from denseclip.models.dense import kspd_refine
from denseclip.models.refiners import CLIPDINOiserRefiner
from denseclip.models.segmentors import OpenVocabSegmentor

VOCAB = ['background', ['person', 'man'], 'car', 'grass']
# Three blocks: CLIP-DINOiser's guidance is block L-3 (0-based: resblocks[-3]).
TINY3 = copy.deepcopy(TINY_VIT)
TINY3['vision_cfg']['layers'] = 3


@pytest.fixture(scope='module')
def clip():
    return make_clip(TINY3)


@pytest.fixture(scope='module')
def tiny3_files(clip, tmp_path_factory):
    """(config, weights) of the three-block tiny CLIP saved as a user's files are."""
    root = tmp_path_factory.mktemp('tiny3')
    (root / 'tiny3.json').write_text(json.dumps(TINY3))
    save_file(clip.state_dict(), str(root / 'tiny3.safetensors'))
    return root / 'tiny3.json', root / 'tiny3.safetensors'


def make_segmentor(clip, dense='MaskCLIPAttention', **kwargs):
    backbone = dict(type='CLIPViT', model=clip, dense=dict(type=dense), pos_interp='size')
    return OpenVocabSegmentor(backbone=backbone, vocabulary=VOCAB, **kwargs).eval()


def random_heads(seed=0, **kwargs):
    torch.manual_seed(seed)
    heads = CLIPDINOiserRefiner(in_channels=64, proj_channels=16, **kwargs)
    with torch.no_grad():
        for p in heads.parameters():
            p.normal_(0, 0.3)
    return heads


def released_clip_dinoiser(seg, heads, window, apply_found):
    """CLIP_DINOiser.forward (clip_dinoiser.py@a954aae) on one window, then mmseg's resize:
    G hooked at resblocks[-3].ln_2, pooled MaskCLIP features, softmax(100·cos), FOUND."""
    captured = {}
    ln2 = seg.backbone.blocks[-3].ln_2
    handle = ln2.register_forward_hook(lambda m, i, o: captured.setdefault('g', o))
    try:
        feats = seg.backbone.encode_dense(window)  # (1, E, h, w)
    finally:
        handle.remove()
    B, E, h, w = feats.shape
    g = captured['g'][:, 1:].transpose(1, 2).reshape(B, -1, h, w)  # (1, D, h, w)
    proj = heads.obj_proj(g).reshape(B, heads.obj_proj.out_channels, -1)
    proj = proj / proj.norm(dim=1, keepdim=True)
    corrs = (proj.transpose(1, 2) @ proj).reshape(B, h * w, h, w)
    corrs[corrs < heads.gamma] = 0.0
    pooled = torch.einsum('bnij,bcij->bcn', corrs, feats)
    pooled = (pooled / (corrs.flatten(-2).sum(-1)[:, None] + 1e-6)).reshape(B, E, h, w)
    pooled = pooled / pooled.norm(dim=1, keepdim=True)
    out = F.softmax(torch.einsum('bchw,qc->bqhw', pooled, seg.classifier.embeddings) * 100, 1)
    if apply_found:
        bkg = heads.bkg_decoder(g / g.norm(dim=1, keepdim=True)).sigmoid().reshape(-1)
        uncertain = (out.max(dim=1)[0] < heads.found_delta).reshape(-1)
        out.reshape(1, out.shape[1], -1)[:, 0, uncertain & ~(bkg > 0.5)] = 1.0
    return F.interpolate(out, size=window.shape[2:], mode='bilinear', align_corners=False)


@pytest.mark.parametrize('apply_found', [False, True])
def test_clip_dinoiser_window_equals_the_released_forward(clip, apply_found):
    heads = random_heads(apply_found=apply_found, found_delta=0.9)
    seg = make_segmentor(clip, slide_crop=0, logit_scale=100.0, window_softmax=True)
    seg.feature_refiner = heads
    image = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        expected = released_clip_dinoiser(seg, heads, image, apply_found)
        got = seg.inference(image, (48, 80))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    if apply_found:  # the override fired somewhere, or the test would prove nothing
        assert (expected[0, 0] == 1.0).any()


def test_window_softmax_averages_probabilities_over_windows(clip):
    seg = make_segmentor(clip, slide_crop=32, slide_stride=16, logit_scale=100.0,
                         window_softmax=True)
    image = torch.randn(1, 3, 32, 64)
    with torch.no_grad():
        got = seg.inference(image, (32, 64))
        canvas = torch.zeros(1, 5, 32, 64)
        count = torch.zeros(1, 1, 32, 64)
        for x1 in (0, 16, 32):
            feats = F.normalize(seg.backbone.encode_dense(image[:, :, :, x1:x1 + 32]), dim=1)
            cos = torch.einsum('behw,qe->bqhw', feats, seg.classifier.embeddings)
            probs = F.interpolate(torch.softmax(100 * cos, 1), size=(32, 32), mode='bilinear')
            canvas[:, :, :, x1:x1 + 32] += probs
            count[:, :, :, x1:x1 + 32] += 1
    torch.testing.assert_close(got, canvas / count)
    probs, labels = seg.postprocess(got[0])  # not softmaxed a second time
    torch.testing.assert_close(probs[0], got[0, 0])
    torch.testing.assert_close(probs[1], got[0, 1:3].amax(0))


def test_patch_refiner_gets_the_vocabulary_and_refines_each_window(clip, monkeypatch):
    monkeypatch.setattr('denseclip.models.dense.cliptrase.dbscan_labels',
                        lambda w, eps, min_samples: torch.arange(w.shape[0]) % 2)
    seg = make_segmentor(clip, dense='CLIPtraseAttention', slide_crop=0, logit_scale=100.0,
                         patch_refiner=dict(type='CLIPtraseRegionRefiner', mode='mean'))
    assert seg.patch_refiner.embeddings is seg.classifier.embeddings
    image = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        dense = seg.backbone.forward_dense(image)
        cos = torch.einsum('behw,qe->bqhw', F.normalize(dense.feats, dim=1),
                           seg.classifier.embeddings)
        expected = seg.patch_refiner(cos, dense, seg.backbone)
        torch.testing.assert_close(seg.inference(image, (48, 64)), expected)
    # Two interleaved clusters, mean of logits per cluster: two distinct logit vectors only.
    assert torch.unique(expected[0].flatten(1), dim=1).shape[1] == 2
    seg.set_vocabulary(['sky', 'road'])
    assert seg.patch_refiner.embeddings.shape[0] == 2
    assert seg.patch_refiner.query_to_class.tolist() == [0, 1]


def test_cls_feats_are_the_last_blocks_cls_and_nothing_reruns_a_block(clip):
    """DenseOutput.cls_feats: for CLIP's own attention, CLIP's image embedding; CLIPtrase's
    [CLS] product reads it, so the dense last block runs once per window batch."""
    vanilla = make_segmentor(clip, dense='VanillaAttention')
    image = torch.randn(2, 3, 64, 64)  # the tiny CLIP's own 64 x 64: no position resampling
    with torch.no_grad():
        torch.testing.assert_close(vanilla.backbone.forward_dense(image).cls_feats,
                                   clip.encode_image(image), atol=1e-5, rtol=1e-5)
    seg = make_segmentor(clip, dense='CLIPtraseAttention', slide_crop=0,
                         patch_refiner=dict(type='CLIPtraseRegionRefiner', cls_product=True))
    calls = []
    hook = seg.backbone.dense.register_forward_hook(lambda *args: calls.append(1))
    try:
        with torch.no_grad():
            seg.inference(image[:1], (64, 64))
    finally:
        hook.remove()
    assert len(calls) == 1
    with torch.no_grad():
        dense = seg.backbone.forward_dense(image)
        block = seg.backbone.blocks[-1]
        cls = seg.backbone.dense(block, dense.tokens[-1], dense.grid)[:, 0]  # a rerun, here
        want = F.normalize(seg.backbone.visual.ln_post(cls) @ seg.backbone.visual.proj, dim=-1)
        torch.testing.assert_close(seg.patch_refiner.cls_logits(dense),
                                   want @ seg.classifier.embeddings.T, atol=1e-5, rtol=1e-5)


def test_refiners_follow_their_slots_protocol(clip):
    with pytest.raises(TypeError, match=r'patch_refiner: PAMRRefiner is not a PatchRefiner'):
        make_segmentor(clip, patch_refiner=dict(type='PAMRRefiner'))
    with pytest.raises(TypeError, match=r'refiner: KSPDRefiner is not a ScoreRefiner'):
        make_segmentor(clip, refiner=dict(type='KSPDRefiner'))


def test_kspd_refiner_uses_the_same_passes_keys(clip):
    seg = make_segmentor(clip, slide_crop=0,
                         patch_refiner=dict(type='KSPDRefiner', ks_thresh=1.0, pd_thresh=0.3))
    image = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        dense = seg.backbone.forward_dense(image)
        cos = torch.einsum('behw,qe->bqhw', F.normalize(dense.feats, dim=1),
                           seg.classifier.embeddings)
        out = kspd_refine(cos, seg.backbone.patch_keys(dense), ks_thresh=1.0, pd_thresh=0.3)
        expected = F.interpolate(out, size=(32, 48), mode='bilinear')
        torch.testing.assert_close(seg.inference(image, (32, 48)), expected)


def test_pad_multiple_pads_to_the_common_multiple_of_proxy_and_patch(clip):
    seg = make_segmentor(clip, slide_crop=0, pad_to_patch=True, pad_multiple=56)
    image = torch.randn(1, 3, 100, 120)
    with torch.no_grad():
        got = seg.inference(image, (100, 120))
        # lcm(56, 16) = 112: 100 -> 112 (6 above, 6 below), 120 -> 224 (52 left, 52 right)
        padded = F.pad(image, (52, 52, 6, 6))
        feats = F.normalize(seg.backbone.encode_dense(padded), dim=1)
        assert feats.shape[2:] == (7, 14)
        cos = torch.einsum('behw,qe->bqhw', feats, seg.classifier.embeddings)
        cos = F.interpolate(cos, size=(112, 224), mode='bilinear')[:, :, 6:106, 52:172]
    torch.testing.assert_close(got, cos)
    with pytest.raises(ValueError, match='pad_multiple=56 needs pad_to_patch=True'):
        make_segmentor(clip, pad_multiple=56)


def test_clip_dinoiser_heads_sizes_are_read_from_the_checkpoint(tmp_path):
    heads = random_heads()
    path = tmp_path / 'heads.safetensors'
    save_file(heads.state_dict(), str(path))
    loaded = CLIPDINOiserRefiner(in_channels=None, proj_channels=None, checkpoint=path)
    assert (loaded.obj_proj.in_channels, loaded.obj_proj.out_channels) == (64, 16)
    torch.testing.assert_close(loaded.obj_proj.weight, heads.obj_proj.weight)
    with pytest.raises(ValueError, match='read from the heads checkpoint'):
        CLIPDINOiserRefiner(in_channels=None)


def tiny_dino():
    torch.manual_seed(0)
    return VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=1, num_heads=2,
                             num_classes=0).eval()


def test_python_api_second_wave_methods(tiny3_files, tmp_path):
    config, weights = tiny3_files
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    heads = tmp_path / 'heads.safetensors'
    save_file(random_heads().state_dict(), str(heads))
    with pytest.raises(ValueError, match="needs its trained heads: pass heads="):
        denseclip.OpenVocabSegmenter('clip_dinoiser', config, weights)
    with pytest.raises(ValueError, match='proxy= is a setting of ProxyCLIP, CorrCLIP and Trident'):
        denseclip.OpenVocabSegmenter('sclip', config, weights, proxy=dict(type='DINOProxy'))
    # build_dense_clip takes the same proxy= (it raised a TypeError from CLIPViT)
    with pytest.raises(ValueError, match='proxy= is a setting of ProxyCLIP, CorrCLIP and Trident'):
        denseclip.build_dense_clip(config, weights, method='sclip', proxy=dict(type='DINOProxy'))
    proxy = dict(type='DINOProxy', model=tiny_dino())
    dense = denseclip.build_dense_clip(config, weights, method='proxyclip', proxy=proxy)
    seg = denseclip.OpenVocabSegmenter('proxyclip', config, weights, proxy=proxy)
    crops = torch.randn(1, 3, 112, 112, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(dense.encode_dense(crops),
                                   seg.segmentor.backbone.encode_dense(crops))
    builds = {
        'clip_dinoiser': dict(heads=heads, short_side=64, slide_crop=64, slide_stride=32),
        'proxyclip': dict(proxy=dict(type='DINOProxy', model=tiny_dino()), short_side=56,
                          slide_crop=56, slide_stride=28),
        'cliptrase': dict(short_side=64),
    }
    for method, settings in builds.items():
        seg = denseclip.OpenVocabSegmenter(method, config, weights, **settings)
        r = seg(image, classes=VOCAB)
        assert r.labels.shape == (50, 70) and r.probs.shape == (4, 50, 70)
        assert (r.probs.sum(0) <= 1 + 1e-5).all()  # not renormalised (NACLIP's setting)
    seg = denseclip.OpenVocabSegmenter('clip_dinoiser', config, weights, heads=heads)
    assert seg.segmentor.window_softmax and seg.segmentor.feature_refiner.obj_proj.out_channels == 16


def test_methods_compose_attention_feature_and_patch_refiners(clip, monkeypatch):
    # NACLIP's attention, CLIP-DINOiser's pooling and CLIPtrase's region mean in one segmentor:
    # each stage sees the previous one's output and the same forward pass.
    monkeypatch.setattr('denseclip.models.dense.cliptrase.dbscan_labels',
                        lambda w, eps, min_samples: torch.arange(w.shape[0]) // 3)
    seg = make_segmentor(clip, dense='NACLIPAttention', slide_crop=0,
                         patch_refiner=dict(type='CLIPtraseRegionRefiner', mode='mean'))
    seg.feature_refiner = random_heads()
    image = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        dense = seg.backbone.forward_dense(image)
        feats = seg.feature_refiner(dense.feats, dense, seg.backbone)
        cos = torch.einsum('behw,qe->bqhw', F.normalize(feats, dim=1),
                           seg.classifier.embeddings)
        expected = seg.patch_refiner(cos, dense, seg.backbone)
        got = seg.inference(image, (48, 48))
    torch.testing.assert_close(got, expected)
    plain = make_segmentor(clip, dense='NACLIPAttention', slide_crop=0)
    with torch.no_grad():
        assert not torch.allclose(plain.inference(image, (48, 48)), got, atol=1e-3)
