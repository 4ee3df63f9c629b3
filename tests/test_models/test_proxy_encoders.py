"""Proxy encoders: position-embedding resizing, prefix tokens, loading, offline errors; and
every module registered for CLIPtrase and ProxyCLIP running at H != W without NaN."""
from __future__ import annotations

import types

import pytest
import timm
import torch
import torch.nn.functional as F
from conftest import TINY_VIT, make_clip
from segment_anything.modeling import ImageEncoderViT
from test_proxyclip import _dino_features, tiny_dino

from denseclip.clip import WeightsNotFoundError
from denseclip.models.backbones import CLIPViT
from denseclip.models.backbones.proxy import (SAM_PIXEL_MEAN, SAM_PIXEL_STD, DINOProxy, SAMProxy,
                                              default_pos_interp)
from denseclip.apis.dense_clip import dense_method_kwargs, known_methods
from denseclip.registry import MODELS


@pytest.fixture(scope='module')
def clip():
    return make_clip(TINY_VIT)


def tiny_dinov2_reg(seed=0, **kwargs):
    """A DINOv2-with-registers layout: 4 register tokens, pos-embed on patches only."""
    return tiny_dino(seed, reg_tokens=4, no_embed_class=True, init_values=1e-5, **kwargs)


def tiny_sam_encoder(seed=0):
    torch.manual_seed(seed)
    return ImageEncoderViT(img_size=64, patch_size=16, embed_dim=32, depth=2, num_heads=2,
                           out_chans=16, use_rel_pos=True, window_size=2,
                           global_attn_indexes=(1,)).eval()


@pytest.mark.parametrize('size', [(32, 32), (48, 80), (24, 16)])
def test_dino_proxy_resizes_the_pos_embed_dinos_way(size):
    vit = tiny_dino()
    pixels = torch.randn(2, 3, *size)
    with torch.no_grad():
        torch.testing.assert_close(DINOProxy(model=vit)(pixels), _dino_features(vit, pixels),
                                   rtol=1e-5, atol=1e-5)


def test_dinov2_registers_are_dropped_and_resizing_is_timms():
    vit = tiny_dinov2_reg()
    assert vit.num_prefix_tokens == 5
    pixels = torch.randn(2, 3, 48, 80)
    # Same weights, timm's own run-time resize (that of the DINOv2 hub's _reg models).
    dynamic = tiny_dinov2_reg(dynamic_img_size=True)
    dynamic.load_state_dict(vit.state_dict())
    with torch.no_grad():
        got = DINOProxy(model=vit, pos_interp='size_antialias')(pixels)
        tokens = dynamic.forward_features(pixels)[:, 5:]
    assert got.shape == (2, 64, 6, 10)
    torch.testing.assert_close(got, tokens.transpose(1, 2).reshape(2, 64, 6, 10),
                               rtol=1e-5, atol=1e-5)


def test_default_pos_interp_follows_the_original_repository():
    assert default_pos_interp('vit_base_patch14_reg4_dinov2.lvd142m') == 'size_antialias'
    assert default_pos_interp('vit_base_patch8_224.dino') == 'scale_factor'
    assert default_pos_interp('vit_base_patch14_dinov2.lvd142m') == 'scale_factor'
    assert 'vit_base_patch14_reg4_dinov2.lvd142m' in timm.list_models(pretrained=True)
    assert 'vit_base_patch8_224.dino' in timm.list_models(pretrained=True)


def test_local_file_gives_identical_features(tmp_path):
    vit = tiny_dino(seed=0)
    path = tmp_path / 'dino.pth'
    torch.save(vit.state_dict(), path)
    pixels = torch.randn(1, 3, 48, 80)
    loaded = DINOProxy(model=tiny_dino(seed=1), pretrained=path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixels), DINOProxy(model=vit)(pixels))


def test_timm_name_with_a_local_file_through_a_config(tmp_path, clip):
    torch.manual_seed(0)
    vit = timm.create_model('vit_small_patch16_224.dino', num_classes=0).eval()
    path = tmp_path / 'dino_vits16.safetensors'
    from safetensors.torch import save_file

    save_file(vit.state_dict(), str(path))
    model = CLIPViT(model=clip, pos_interp='scale_factor', dense=dict(
        type='ProxyCLIPAttention', beta=1.0, gamma=2.0, proxy=dict(
            type='DINOProxy', model='vit_small_patch16_224.dino', pretrained=str(path))))
    proxy = model.dense.proxy
    assert proxy.pos_interp == 'scale_factor' and model.dense.beta == 1.0
    pixels = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(proxy(pixels), DINOProxy(model=vit)(pixels))
        feats = model.encode_dense(torch.randn(1, 3, 32, 64))
    assert feats.shape == (1, TINY_VIT['embed_dim'], 2, 4) and torch.isfinite(feats).all()


def test_facebookresearch_dinov2_layout_loads(tmp_path):
    vit = tiny_dinov2_reg(seed=0)
    state = vit.state_dict()
    cls_pos = torch.randn(1, 1, 64)
    original = {k: v for k, v in state.items() if k not in ('reg_token', 'cls_token',
                                                             'pos_embed')}
    original.update(register_tokens=state['reg_token'], mask_token=torch.zeros(1, 64),
                    cls_token=state['cls_token'] - cls_pos,
                    pos_embed=torch.cat([cls_pos, state['pos_embed']], 1))
    path = tmp_path / 'dinov2_reg4_pretrain.pth'
    torch.save(original, path)
    loaded = DINOProxy(model=tiny_dinov2_reg(seed=1), pretrained=path)
    pixels = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(loaded(pixels), DINOProxy(model=vit)(pixels))


def test_a_mismatched_file_lists_the_keys(tmp_path):
    state = tiny_dino().state_dict()
    state.pop('norm.weight')
    path = tmp_path / 'broken.pth'
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing \(1\): \['norm.weight'\]"):
        DINOProxy(model=tiny_dino(), pretrained=path)
    with pytest.raises(FileNotFoundError, match='DINOProxy: weights file not found'):
        DINOProxy(model=tiny_dino(), pretrained=tmp_path / 'absent.pth')


@pytest.mark.parametrize('env', ['HF_HUB_OFFLINE', 'DENSECLIP_OFFLINE'])
def test_offline_hub_name_fails_with_one_clear_error(monkeypatch, env):
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    monkeypatch.setenv(env, '1')
    with pytest.raises(WeightsNotFoundError) as info:
        DINOProxy('vit_base_patch8_224.dino', pretrained='timm')
    message = str(info.value)
    assert "model='vit_base_patch8_224.dino', pretrained='timm' are not available" in message
    assert '(offline mode)' in message
    assert "pass its path: pretrained='/path/to/model.safetensors'" in message
    assert 'dino_vitbase8_pretrain.pth' in message
    assert info.value.__context__ is None and info.value.__cause__ is None


def test_bad_proxy_arguments_are_reported():
    with pytest.raises(KeyError, match="model='vit_bse_patch8_224.dino' is not a timm model"):
        DINOProxy('vit_bse_patch8_224.dino')
    with pytest.raises(ValueError, match="pretrained='timm' needs a timm model name"):
        DINOProxy(model=tiny_dino(), pretrained='timm')
    with pytest.raises(ValueError, match="pos_interp='bilinear'"):
        DINOProxy(model=tiny_dino(), pos_interp='bilinear')
    with pytest.raises(ValueError, match=r'input \(1, 3, 30, 32\).*patch size 8'):
        DINOProxy(model=tiny_dino())(torch.randn(1, 3, 30, 32))
    with pytest.raises(KeyError, match="model_type='vit_s'"):
        SAMProxy('vit_s')


def test_sam_proxy_resizes_to_its_square_input():
    encoder = tiny_sam_encoder()
    proxy = SAMProxy(encoder)
    pixels = torch.randn(2, 3, 48, 80)
    with torch.no_grad():
        want = encoder(F.interpolate(pixels, size=(64, 64), mode='bilinear'))
        torch.testing.assert_close(proxy(pixels), want)
    assert want.shape == (2, 16, 4, 4)
    # SAM's pixel statistics on 0-255 are ImageNet's on 0-1: one normalisation for both.
    torch.testing.assert_close(torch.tensor(proxy.mean), torch.tensor(DINOProxy.mean))
    torch.testing.assert_close(torch.tensor(proxy.std), torch.tensor(DINOProxy.std))
    assert proxy.mean == tuple(m / 255 for m in SAM_PIXEL_MEAN)
    assert proxy.std == tuple(s / 255 for s in SAM_PIXEL_STD)


def test_sam_checkpoint_loads_strictly(tmp_path):
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    sam = sam_model_registry['vit_b'](checkpoint=None)
    path = tmp_path / 'sam_vit_b.pth'
    torch.save(sam.state_dict(), path)
    proxy = SAMProxy('vit_b', checkpoint=path)
    for (name, got), want in zip(proxy.encoder.state_dict().items(),
                                 sam.image_encoder.state_dict().values()):
        assert torch.equal(got, want), name
    torch.save({k: v for k, v in sam.state_dict().items() if 'neck' not in k}, path)
    with pytest.raises(ValueError, match=r'missing \(6\).*image_encoder.neck'):
        SAMProxy('vit_b', checkpoint=path)


# ----------------------------------------------------------- every new module, H != W
NEW_TYPES = ['CLIPtraseAttention', 'ProxyCLIPAttention', 'DINOProxy', 'SAMProxy',
             'CLIPtraseRegionRefiner']


def test_the_list_covers_every_new_registered_module():
    modules = {'denseclip.models.dense.cliptrase', 'denseclip.models.dense.proxyclip',
               'denseclip.models.backbones.proxy'}
    registered = {name for name, cls in MODELS.module_dict.items()
                  if getattr(cls, '__module__', '') in modules}
    assert registered == set(NEW_TYPES)


@pytest.mark.parametrize('proxy', ['dino', 'dinov2', 'sam'])
def test_proxyclip_runs_non_square_with_gradients(clip, proxy):
    proxy = dict(dino=lambda: DINOProxy(model=tiny_dino()),
                 dinov2=lambda: DINOProxy(model=tiny_dinov2_reg(), pos_interp='size_antialias'),
                 sam=lambda: SAMProxy(tiny_sam_encoder()))[proxy]()
    model = CLIPViT(model=clip, pos_interp='scale_factor')
    model.dense = MODELS.get('ProxyCLIPAttention')(proxy=proxy)
    images = torch.randn(2, 3, 32, 112, requires_grad=True)
    feats = model.encode_dense(images)
    assert torch.isfinite(feats).all()
    if isinstance(proxy, DINOProxy):
        assert feats.shape == (2, TINY_VIT['embed_dim'], 4, 14)
    feats.square().mean().backward()
    assert torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0


def test_method_settings_come_from_the_harness_configs():
    """build_dense_clip's and the API's method settings are the harness configs' backbones
    (one table): the benchmark configs inherit the same dicts."""
    assert known_methods() == ['clearclip', 'clip_dinoiser', 'cliptrase', 'corrclip', 'maskclip',
                               'naclip', 'proxyclip', 'resclip', 'scclip', 'sclip', 'trident',
                               'vanilla']
    assert dense_method_kwargs('cliptrase') == dict(dense=dict(type='CLIPtraseAttention'),
                                                    pos_interp='scale_factor')
    assert dense_method_kwargs('vanilla') == dict(dense=dict(type='VanillaAttention'),
                                                  pos_interp='scale_factor')  # SCLIP's harness
    proxyclip = dense_method_kwargs('proxyclip')
    assert proxyclip['pos_interp'] == 'scale_factor'
    assert proxyclip['dense']['proxy'] == dict(
        type='DINOProxy', model='vit_base_patch8_224.dino', pretrained='timm',
        pos_interp='scale_factor')
    with pytest.raises(KeyError, match=r"method='sclipp' is not a dense method; known: "):
        dense_method_kwargs('sclipp')


@pytest.mark.parametrize('kwargs', [dict(mode='vote'), dict(mode='mean'),
                                    dict(mode='vote', cls_product=True, preset=336),
                                    dict(mode='vote', eps=1e6, min_samples=1)])
def test_cliptrase_runs_non_square(clip, kwargs):
    model = CLIPViT(model=clip, **dense_method_kwargs('cliptrase')).eval()
    images = torch.randn(2, 3, 32, 112)
    refiner = MODELS.build(dict(type='CLIPtraseRegionRefiner', **kwargs))
    refiner.set_classifier(types.SimpleNamespace(
        embeddings=F.normalize(torch.randn(5, TINY_VIT['embed_dim']), dim=-1),
        query_to_class=torch.tensor([0, 0, 1, 2, 3])))
    with torch.no_grad():
        dense = model.forward_dense(images)
        assert dense.feats.shape == (2, TINY_VIT['embed_dim'], 2, 7)
        logits = torch.einsum('behw,qe->bqhw', F.normalize(dense.feats, dim=1),
                              refiner.embeddings)
        out = refiner(logits, dense, model)
    assert out.shape in ((2, 5, 2, 7), (2, 5, 32, 112)) and torch.isfinite(out).all()
