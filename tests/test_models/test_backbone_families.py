"""The backbone contract across tower families: open_clip ViTs, EVA02 (RoPE), SigLIP (no [CLS],
MAP head), ConvNeXt and ResNet, on tiny random towers of each family.

Each family's dense path is checked against the tower's own forward (timm's or open_clip's),
and every registered dense method either runs on a family or refuses it by name.
"""
from __future__ import annotations

import json
from contextlib import nullcontext

import numpy as np
import pytest
import torch
from conftest import (OPENAI_RN, TINY_CONVNEXT, TINY_EVA, TINY_SIGLIP, TINY_VIT, make_clip,
                      make_tower_clip)
from timm.models.vision_transformer import VisionTransformer

import denseclip
from denseclip.models.backbones import CLIPConvNeXt, CLIPViT
from denseclip.models.backbones.proxy import DINOProxy
from denseclip.models.backbones.towers import map_values, rope_embed
from denseclip.models.dense import DenseAttention, VanillaAttention, block_qkv, merge_heads
from denseclip.registry import MODELS

FAMILIES = dict(openclip=TINY_VIT, eva=TINY_EVA, siglip=TINY_SIGLIP)
SIZES = [(64, 64), (96, 80)]  # the native 4x4 grid and a larger, non-square 6x5 one


def _clip(family):
    cfg = FAMILIES[family]
    return make_clip(cfg) if family == 'openclip' else make_tower_clip(cfg)


@pytest.fixture(scope='module', params=sorted(FAMILIES))
def family(request):
    return request.param, _clip(request.param)


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('name', ['eva', 'siglip'])
def test_vanilla_dense_path_is_the_timm_towers_own_forward(name, size):
    clip = _clip(name)
    model = CLIPViT(model=clip).eval()
    images = torch.randn(2, 3, *size)
    trunk = clip.visual.trunk
    with torch.no_grad():
        tokens, grid = model.trunk(images)
        out = model.dense(model.blocks[-1], tokens[-1], grid)  # vanilla last block
        # the tower's own forward (timm resamples its position embedding and RoPE itself)
        torch.testing.assert_close(trunk.norm(out), trunk.forward_features(images),
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.tower.pooled(out), clip.encode_image(images),
                                   rtol=1e-5, atol=1e-5)
    assert model.num_prefix_tokens == (1 if name == 'eva' else 0)
    assert model.family == name


def test_vanilla_dense_path_is_open_clips_own_forward():
    clip = make_clip(TINY_VIT)
    model = CLIPViT(model=clip).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tokens, grid = model.trunk(images)
        out = model.dense(model.blocks[-1], tokens[-1], grid)
        want = clip.visual.transformer(clip.visual._embeds(images))
        torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.tower.pooled(out), clip.encode_image(images),
                                   rtol=1e-5, atol=1e-5)
        dense = model.forward_dense(images)
        torch.testing.assert_close(dense.cls_feats, clip.encode_image(images), rtol=1e-5,
                                   atol=1e-5)


def test_eva_rope_attention_is_the_towers_own_attention():
    """With 'vanilla', the method's attention (q, k rotated in block_qkv) reproduces
    EvaAttention's output at a non-square grid, and the rotary embedding is timm's own."""
    clip = make_tower_clip(TINY_EVA)
    model = CLIPViT(model=clip).eval()
    trunk = clip.visual.trunk
    images = torch.randn(2, 3, 96, 80)
    with torch.no_grad():
        x, rope = trunk._pos_embed(trunk.patch_embed(images))  # timm's dynamic-size path
        x = trunk.blocks[0](trunk.norm_pre(x), rope=rope)
        grid = (6, 5)
        torch.testing.assert_close(rope_embed(trunk.rope, grid), rope)
        eva_block = trunk.blocks[-1]
        want = eva_block.attn(eva_block.norm1(x), rope=rope)
        block = model.blocks[-1]
        q, k, v = block_qkv(block, x, grid)
        got = block.attn.out_proj(merge_heads(VanillaAttention().attend(q, k, v, grid)))
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        # without the rotation the attention differs: RoPE is really applied
        assert not torch.allclose(q, block_qkv(model.blocks[-1], x, (5, 6))[0], atol=1e-3)
    with pytest.raises(TypeError, match='rotary position embeddings .* pass the patch grid'):
        block_qkv(block, x)


def test_siglip_dense_features_are_the_map_head_on_each_token():
    """The MAP head attending to a single token is its value path: map_values per token."""
    clip = make_tower_clip(TINY_SIGLIP)
    pool = clip.visual.trunk.attn_pool
    tokens = torch.randn(2, 7, 64)
    with torch.no_grad():
        want = torch.stack([pool(tokens[:, i:i + 1]) for i in range(7)], dim=1)
        torch.testing.assert_close(map_values(pool, tokens), want, rtol=1e-5, atol=1e-5)
        # and the pool over identical tokens is the same embedding
        same = tokens[:, :1].expand(-1, 5, -1)
        torch.testing.assert_close(pool(same), map_values(pool, tokens[:, 0]), rtol=1e-5,
                                   atol=1e-5)


def _attention_types():
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, DenseAttention))


# settings that fit the 2-block tiny towers; a second encoder where the method needs one
FIT = dict(SCCLIPAttention=dict(pre_adjust_idx=0, post_adjust_idx=0, multi_start_idx=0,
                                multi_end_idx=1),
           ResCLIPAttention=dict(attention=dict(type='NACLIPAttention'), rcs_blocks=(0, 1)),
           CorrScopeAttention=dict(attention=dict(type='NACLIPAttention')))
# methods needing a SAM / mask generator: their own tests run them on the 'openclip' family
# (test_corrclip, test_trident); here they are checked to refuse the other families.
OWN_TESTS = ('CorrCLIPAttention', 'TridentAttention')


def _tiny_dino_proxy():
    torch.manual_seed(1)
    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2,
                            num_classes=0).eval()
    return DINOProxy(vit)


@pytest.mark.parametrize('type_name', _attention_types())
def test_every_dense_method_runs_on_or_refuses_every_family(family, type_name):
    name, clip = family
    cls = MODELS.get(type_name)
    kwargs = dict(FIT.get(type_name, {}))
    if type_name == 'ProxyCLIPAttention':
        kwargs['proxy'] = _tiny_dino_proxy()
    if name not in cls.supported_families:
        with pytest.raises(TypeError, match=f"{type_name} does not support '{name}' image "
                                            r"towers; it supports \("):
            CLIPViT(model=clip, dense=dict(type=type_name, **kwargs))
        return
    if type_name in OWN_TESTS:
        assert name == 'openclip'
        return
    model = CLIPViT(model=clip, dense=dict(type=type_name, **kwargs)).eval()
    images = torch.randn(2, 3, 48, 112)  # 3x7 grid, not the native 4x4
    regions = torch.zeros(2, 48, 112, dtype=torch.long)
    regions[:, :, 64:] = 1
    masks = model.dense.use_masks(regions) if hasattr(model.dense, 'use_masks') else nullcontext()
    with torch.no_grad(), masks:
        feats = model.encode_dense(images)
    assert feats.shape[:2] == (2, model.embed_dim) and torch.isfinite(feats).all()


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_slide_segmentation_on_every_family(tmp_path, name):
    """The user path: a config-JSON tower through OpenVocabSegmenter, sliding 64-pixel crops
    over an image whose sides are not multiples of the crop."""
    path = tmp_path / f'{name}.json'
    path.write_text(json.dumps(FAMILIES[name]))
    seg = denseclip.OpenVocabSegmenter('naclip', model=str(path), pretrained=None,
                                       slide_crop=64, slide_stride=32, short_side=None)
    image = np.random.default_rng(0).integers(0, 255, (70, 100, 3), dtype=np.uint8)
    result = seg(image, ['cat', 'dog', 'sky'])
    assert result.labels.shape == (70, 100)
    assert set(np.unique(result.labels)) <= {0, 1, 2}
    assert seg.segmentor.backbone.family == name


def test_convnext_dense_head_is_the_towers_own_embedding_on_one_location():
    clip = make_tower_clip(TINY_CONVNEXT)
    model = CLIPConvNeXt(model=clip).eval()
    with torch.no_grad():
        one = torch.randn(2, 3, 32, 32)  # stride 32: a single location, the pool is identity
        torch.testing.assert_close(model.encode_dense(one)[:, :, 0, 0], clip.encode_image(one),
                                   rtol=1e-5, atol=1e-5)
        images = torch.randn(1, 3, 96, 64)
        dense = model.forward_dense(images)
        # each location is the head applied to that location's trunk vector alone
        res5 = clip.visual.trunk.forward_features(images)
        torch.testing.assert_close(dense.tokens[-1], res5)
        i, j = 2, 1
        vec = res5[:, :, i:i + 1, j:j + 1]
        head = clip.visual.head(clip.visual.trunk.head.norm(vec).flatten(1))
        torch.testing.assert_close(dense.feats[:, :, i, j], head, rtol=1e-5, atol=1e-5)
    assert dense.feats.shape == (1, 32, 3, 2)
    assert [f.shape[1] for f in model(images)] == list(model.stage_channels) == [24, 32, 48, 64]
    assert model.num_prefix_tokens == 0 and model.output_stride == 32


def test_families_refuse_by_name(tmp_path):
    with pytest.raises(TypeError, match=r"ModifiedResNet image tower .* not a ViT family .* "
                                        r"supported: \('openclip', 'eva', 'siglip'\)"):
        CLIPViT(model=make_clip(OPENAI_RN))
    with pytest.raises(TypeError, match="not a timm ConvNeXt; use type='CLIPViT'"):
        CLIPConvNeXt(model=make_clip(TINY_VIT))
    path = tmp_path / 'convnext.json'
    path.write_text(json.dumps(TINY_CONVNEXT))
    assert isinstance(denseclip.build_dense_clip(str(path), pretrained=None), CLIPConvNeXt)
    with pytest.raises(ValueError, match=r"method='naclip' modifies ViT attention; a ConvNeXt "
                                         r"CLIP supports \('vanilla',\)"):
        denseclip.build_dense_clip(str(path), pretrained=None, method='naclip')


def test_clip_dinoisers_refiner_runs_on_every_vit_family(family):
    """The refiner the support table credits to clip_dinoiser reads the guidance block's LN2
    patch tokens through the family's prefix count and RoPE."""
    from denseclip.models.refiners.clip_dinoiser import CLIPDINOiserRefiner

    name, clip = family
    model = CLIPViT(model=clip, dense=dict(type='MaskCLIPAttention')).eval()
    refiner = CLIPDINOiserRefiner(in_channels=model.width, proj_channels=16,
                                  guidance_block=0).eval()
    with torch.no_grad():
        dense = model.forward_dense(torch.randn(1, 3, 48, 112))
        out = refiner(dense.feats, dense, model)
        guidance = refiner.guidance(dense, model)
    assert out.shape == dense.feats.shape and torch.isfinite(out).all()
    assert guidance.shape == (1, model.width, 3, 7)
    # the guidance is block 0's LN2 output on the patch tokens (the prefix cut off)
    assert not torch.allclose(out, dense.feats)


def test_support_table_in_model_zoo_is_the_registrys(monkeypatch):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    monkeypatch.syspath_prepend(str(root / 'tools'))
    spec = importlib.util.spec_from_file_location('backbone_support',
                                                  root / 'tools' / 'backbone_support.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.support()
    for method, cells in rows.items():
        attention = MODELS.get(denseclip.apis.dense_clip.dense_method_kwargs(method)['dense']
                               ['type'])
        for fam in FAMILIES:
            assert cells[fam] == (fam in attention.supported_families)
    assert rows['naclip']['eva'] and not rows['corrclip']['siglip'] and rows['vanilla']['convnext']
    zoo = (root / 'model_zoo.md').read_text()
    assert module.table(rows) in zoo, 'run python tools/backbone_support.py --write'


# open_clip's real configs, built on the meta device (no memory, no weights): the contract
# each reports is the published architecture (patch, width, E, blocks, prefix tokens).
REAL = [
    ('ViT-B-32', 'openclip', 32, 768, 512, 12, 1),
    ('ViT-L-14-336', 'openclip', 14, 1024, 768, 24, 1),
    ('ViT-H-14', 'openclip', 14, 1280, 1024, 32, 1),
    ('ViT-bigG-14', 'openclip', 14, 1664, 1280, 48, 1),
    ('ViT-H-14-CLIPA', 'openclip', 14, 1280, 1024, 32, 1),
    ('EVA02-L-14', 'eva', 14, 1024, 768, 24, 1),
    ('ViT-SO400M-14-SigLIP', 'siglip', 14, 1152, 1152, 27, 0),
    ('ViT-B-16-SigLIP2', 'siglip', 16, 768, 768, 12, 0),
]


@pytest.mark.parametrize('model_name,fam,patch,width,embed,depth,prefix', REAL)
def test_real_architectures_report_their_contract(model_name, fam, patch, width, embed, depth,
                                                  prefix):
    with torch.device('meta'):
        model = CLIPViT(model=model_name, pretrained=None, dense=dict(type='NACLIPAttention'))
        feats = model.encode_dense(torch.empty(1, 3, 20 * patch, 12 * patch))
    assert (model.family, model.patch_size, model.width, model.embed_dim, len(model.blocks),
            model.num_prefix_tokens) == (fam, patch, width, embed, depth, prefix)
    assert feats.shape == (1, embed, 20, 12)


def test_convnext_large_reports_its_contract():
    with torch.device('meta'):
        model = CLIPConvNeXt(model='convnext_large_d_320', pretrained=None)
        feats = model.encode_dense(torch.empty(1, 3, 640, 320))
    assert model.stage_channels == (192, 384, 768, 1536) and model.embed_dim == 768
    assert feats.shape == (1, 768, 20, 10)


def test_open_clip_only_models_refuse_timm_towers():
    from denseclip.models.grounding import dense_stem
    from denseclip.models.textspan import decompose_image

    model = CLIPViT(model=make_tower_clip(TINY_EVA))
    images = torch.randn(1, 3, 64, 64)
    with pytest.raises(TypeError, match="open_clip's VisionTransformer .* not timm towers"):
        decompose_image(model, images)
    with pytest.raises(TypeError, match="region tokens need open_clip's ViT stem .* 'eva'"):
        dense_stem(model, images)
