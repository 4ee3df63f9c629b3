"""Hugging Face CLIP checkpoints load through load_clip and reproduce transformers' embeddings.

transformers is the independent reference: a tiny ``CLIPModel`` (or ``MetaClip2Model``,
``ChineseCLIPModel``) with perturbed weights is saved by ``save_pretrained`` and compared with
the open_clip model our converter builds, for both activations and both pooling rules.
"""
from __future__ import annotations

import json

import pytest
import torch
import transformers  # the reference implementation; in setup.py's 'tests' extra
from open_clip.transformer import QuickGELU
from safetensors.torch import load_file, save_file

from denseclip.clip import load_clip
from denseclip.clip.hf import hf_to_open_clip_config, load_hf_clip_visual, text_pooling

VOCAB, CONTEXT, IMAGE = 100, 16, 32
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
            vocab_size=VOCAB, max_position_embeddings=CONTEXT)
VISION = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
              image_size=IMAGE, patch_size=8)


def _perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Move every weight off its initial value (LayerNorms start at 1 and 0, which would hide
    a swapped ln_pre/ln_post)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=gen))
    return model.eval()


def _save_hf(path, kind='clip', act='quick_gelu', eos=50, text=None, vision=None, **top):
    """A tiny transformers model saved with save_pretrained; returns the model."""
    classes = dict(clip=('CLIPConfig', 'CLIPModel'), metaclip_2=('MetaClip2Config',
                                                                  'MetaClip2Model'),
                   chinese_clip=('ChineseCLIPConfig', 'ChineseCLIPModel'))
    config_cls, model_cls = (getattr(transformers, name) for name in classes[kind])
    text = dict(TEXT, hidden_act=act, eos_token_id=eos, bos_token_id=0, pad_token_id=1,
                **(text or {}))
    if kind == 'chinese_clip':  # BERT text tower
        text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                    num_attention_heads=2, vocab_size=VOCAB)
    config = config_cls(text_config=text, vision_config=dict(VISION, hidden_act=act,
                                                             **(vision or {})),
                        projection_dim=24, **top)
    torch.manual_seed(0)
    model = _perturb(model_cls(config))
    model.save_pretrained(str(path))
    return model


def _tokens(eos: int, seed: int = 0) -> torch.Tensor:
    """(3, CONTEXT) ids where the first EOS is not at the largest id and id 2 comes early, so
    'argmax' and 'eos' pooling pick different positions."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB - 1, (3, CONTEXT), generator=gen)
    ids[ids == eos] = 3
    ids[:, 0] = 0
    ids[:, 1] = 2
    for row, (end, peak) in enumerate([(5, 9), (9, 3), (CONTEXT - 1, 7)]):
        ids[row, end] = eos
        ids[row, peak] = VOCAB - 1
    return ids


def _features(output) -> torch.Tensor:
    """transformers >= 5 returns a model output with the projection as ``pooler_output``."""
    return getattr(output, 'pooler_output', output)


def _assert_same(clip, hf_model, eos: int) -> None:
    torch.manual_seed(1)
    images = torch.randn(2, 3, IMAGE, IMAGE)
    ids = _tokens(eos)
    with torch.no_grad():
        want_image = _features(hf_model.get_image_features(pixel_values=images))
        want_text = _features(hf_model.get_text_features(input_ids=ids))
        torch.testing.assert_close(clip.encode_image(images), want_image, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(clip.encode_text(ids), want_text, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(clip.logit_scale.detach(), hf_model.logit_scale.detach())


@pytest.mark.parametrize('kind,act,eos,pool', [
    ('clip', 'quick_gelu', 50, 'eos'),
    ('clip', 'gelu', 50, 'eos'),
    ('clip', 'quick_gelu', 2, 'argmax'),  # configs written before transformers PR #24773
    ('metaclip_2', 'gelu', 2, 'eos'),  # MetaClip2TextModel has no legacy branch
])
def test_hf_directory_gives_transformers_embeddings(tmp_path, kind, act, eos, pool):
    hf_model = _save_hf(tmp_path / 'hf', kind, act, eos)
    clip, source = load_clip(None, tmp_path / 'hf')
    _assert_same(clip, hf_model, eos)
    assert source.quick_gelu == (act == 'quick_gelu')
    assert any(isinstance(m, QuickGELU) for m in clip.modules()) == (act == 'quick_gelu')
    assert clip.text_pool_type == pool
    assert source.checkpoint == str(tmp_path / 'hf' / 'model.safetensors')
    assert source.config['text_cfg']['context_length'] == CONTEXT
    assert source.identity is not None


def test_text_encoder_prompts_match_transformers(tmp_path):
    """The whole text side on a HF checkpoint with CLIP's BPE vocabulary: denseclip's tokenizer
    and encoder (run up to the last end-of-text token) give transformers' text features."""
    import open_clip

    from denseclip.models.text.encoder import OpenCLIPTextEncoder

    hf_model = _save_hf(tmp_path / 'hf', act='gelu', eos=49407,
                        text=dict(vocab_size=49408, max_position_embeddings=77))
    encoder = OpenCLIPTextEncoder(None, tmp_path / 'hf')
    names, templates = ['cat', 'traffic light'], ['a photo of a {}.', '{}']
    ids = open_clip.get_tokenizer('ViT-B-16')([t.format(n) for n in names for t in templates])
    with torch.no_grad():
        want = _features(hf_model.get_text_features(input_ids=ids))  # (Q*T, D)
        got = encoder.encode_prompts(names, templates)  # (Q, T, D)
    torch.testing.assert_close(got.flatten(0, 1), want, rtol=1e-5, atol=1e-5)


def test_weights_file_with_config_beside_or_named(tmp_path, monkeypatch):
    hf_model = _save_hf(tmp_path / 'hf')
    clip, _ = load_clip(None, tmp_path / 'hf' / 'model.safetensors')
    _assert_same(clip, hf_model, 50)
    monkeypatch.chdir(tmp_path)  # a relative directory name is a directory, not a tag
    clip, _ = load_clip(None, 'hf')
    _assert_same(clip, hf_model, 50)
    # The same keys elsewhere: the config is required and the error says how to give it.
    bare = tmp_path / 'bare' / 'weights.safetensors'
    bare.parent.mkdir()
    save_file(load_file(str(tmp_path / 'hf' / 'model.safetensors')), str(bare))
    with pytest.raises(FileNotFoundError, match=r"needs its config\.json.*model='/path/to"):
        load_clip(None, bare)
    clip, source = load_clip(tmp_path / 'hf' / 'config.json', bare)
    _assert_same(clip, hf_model, 50)
    assert source.model == f"hf:{tmp_path / 'hf' / 'config.json'}"


def test_pytorch_bin_with_legacy_position_ids_and_eps(tmp_path):
    """Older transformers saved ``pytorch_model.bin`` with the position_ids buffers; a
    non-default LayerNorm eps must reach open_clip's norms."""
    hf_model = _save_hf(tmp_path / 'hf', text=dict(layer_norm_eps=1e-3),
                        vision=dict(layer_norm_eps=1e-3))
    state = load_file(str(tmp_path / 'hf' / 'model.safetensors'))
    (tmp_path / 'hf' / 'model.safetensors').unlink()
    state['text_model.embeddings.position_ids'] = torch.arange(CONTEXT)[None]
    state['vision_model.embeddings.position_ids'] = torch.arange((IMAGE // 8) ** 2 + 1)[None]
    torch.save(state, tmp_path / 'hf' / 'pytorch_model.bin')
    clip, source = load_clip(None, tmp_path / 'hf')
    assert source.config['vision_cfg']['norm_kwargs'] == dict(eps=1e-3)
    assert clip.visual.ln_pre.eps == clip.ln_final.eps == 1e-3
    _assert_same(clip, hf_model, 50)


def test_fgclip_short_text_walk(tmp_path):
    """FG-CLIP = CLIPModel + a long-text branch: the plain-CLIP part converts, the branch is
    left out only when config.json names FGCLIPModel, and the end-of-text id is 49407."""
    eos = 49407  # FGCLIPModel.__init__ sets it, whatever config.json holds
    hf_model = _save_hf(tmp_path / 'hf', eos=eos, text=dict(vocab_size=49408))
    weights, config_path = tmp_path / 'hf' / 'model.safetensors', tmp_path / 'hf' / 'config.json'
    state = load_file(str(weights))
    state.update({'text_model.embeddings.position_embedding_res.weight': torch.zeros(248, 32),
                  'text_model.embeddings.position_embedding_ori.weight': torch.zeros(248, 32),
                  'text_filip_projection.weight': torch.zeros(24, 32),
                  'logit_scale_finegraind': torch.tensor(1.0),
                  'logit_scale_hardneg': torch.tensor(1.0)})
    save_file(state, str(weights))
    with pytest.raises(KeyError, match='5 keys of no standard CLIP module.*logit_scale_fine'):
        load_clip(None, tmp_path / 'hf')
    config = json.loads(config_path.read_text())
    config['architectures'] = ['FGCLIPModel']
    config['text_config']['eos_token_id'] = 5
    config_path.write_text(json.dumps(config))
    clip, _ = load_clip(None, tmp_path / 'hf')
    assert (clip.text_pool_type, clip.text_eos_id) == ('eos', eos)
    ids = torch.randint(6, 1000, (3, CONTEXT), generator=torch.Generator().manual_seed(0))
    ids[:, 1] = 5
    ids[torch.arange(3), torch.tensor([4, 9, CONTEXT - 1])] = eos
    images = torch.randn(2, 3, IMAGE, IMAGE)
    with torch.no_grad():
        torch.testing.assert_close(clip.encode_text(ids), _features(
            hf_model.get_text_features(input_ids=ids)), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(clip.encode_image(images), _features(
            hf_model.get_image_features(pixel_values=images)), rtol=1e-5, atol=1e-5)


def _run_cli(argv):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[2] / 'tools' / 'model_converters' / 'hf_clip.py'
    spec = importlib.util.spec_from_file_location('hf_clip_converter', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(a) for a in argv])


def test_cli_converts_once_sharded_too(tmp_path, capsys):
    hf_model = _save_hf(tmp_path / 'hf')
    # Shards: the loader refuses them (one file to fingerprint) and names the converter.
    hf_model.save_pretrained(str(tmp_path / 'sharded'), max_shard_size='20KB')
    assert (tmp_path / 'sharded' / 'model.safetensors.index.json').is_file()
    with pytest.raises(ValueError, match='sharded weights.*hf_clip.py'):
        load_clip(None, tmp_path / 'sharded')
    for src in ('hf', 'sharded'):
        out = tmp_path / 'out' / f'{src}.safetensors'
        assert _run_cli([tmp_path / src, out]) == 0
        assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(src)) == [
            f'{src}.json', f'{src}.safetensors']  # no temporary file left
        clip, source = load_clip(out.with_suffix('.json'), out)
        assert source.quick_gelu
        _assert_same(clip, hf_model, 50)
    assert _run_cli([tmp_path / 'missing', tmp_path / 'x.safetensors']) == 1
    assert 'config.json' in capsys.readouterr().err
    assert not (tmp_path / 'x.safetensors').exists()


def test_vision_only_chinese_clip_and_vision_model(tmp_path, capsys):
    cn = _save_hf(tmp_path / 'cn', 'chinese_clip')
    with pytest.raises(ValueError, match='Chinese-CLIP.*BERT.*load_hf_clip_visual'):
        load_clip(None, tmp_path / 'cn')
    visual, cfg = load_hf_clip_visual(tmp_path / 'cn')
    assert 'text_cfg' not in cfg and cfg['quick_gelu']
    images = torch.randn(2, 3, IMAGE, IMAGE)
    with torch.no_grad():
        torch.testing.assert_close(visual(images),
                                   _features(cn.get_image_features(pixel_values=images)),
                                   rtol=1e-5, atol=1e-5)
    assert _run_cli([tmp_path / 'cn', tmp_path / 'cn.safetensors', '--vision-only']) == 0
    assert all(k.startswith('visual.') for k in load_file(str(tmp_path / 'cn.safetensors')))

    config = transformers.CLIPVisionConfig(**VISION, projection_dim=24)
    torch.manual_seed(0)
    tower = _perturb(transformers.CLIPVisionModelWithProjection(config))
    tower.save_pretrained(str(tmp_path / 'vis'))
    with pytest.raises(ValueError, match='no text tower'):
        load_clip(None, tmp_path / 'vis')
    visual, _ = load_hf_clip_visual(tmp_path / 'vis')
    with torch.no_grad():
        torch.testing.assert_close(visual(images), tower(pixel_values=images).image_embeds,
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('edit,message', [
    (lambda s: s.pop('vision_model.encoder.layers.1.mlp.fc1.bias'),
     r"missing 1 keys \['vision_model\.encoder\.layers\.1\.mlp\.fc1\.bias'\]"),
    (lambda s: s.pop('text_model.encoder.layers.0.self_attn.k_proj.weight'),
     r"missing.*'text_model\.encoder\.layers\.0\.self_attn\.k_proj\.weight'"),
    (lambda s: s.update({'text_model.encoder.layers.0.self_attn.rel_bias': torch.zeros(2)}),
     r"1 keys of no standard CLIP module \['text_model\.encoder\.layers\.0\.self_attn\.rel_bias"),
    (lambda s: s.update({'text_model.encoder.layers.1.mlp.fc1.bias': torch.zeros(64)}),
     r"'text_model\.encoder\.layers\.1\.mlp\.fc1\.bias'.*1 text layers"),
    (lambda s: s.update({'visual_projection.weight': torch.zeros(24, 32)}),
     r"shape mismatch.*visual\.proj: file \(32, 24\) vs model \(64, 24\)"),
])
def test_strict_keys_are_named(tmp_path, edit, message):
    _save_hf(tmp_path / 'hf')
    weights = tmp_path / 'hf' / 'model.safetensors'
    state = load_file(str(weights))
    edit(state)
    save_file(state, str(weights))
    with pytest.raises((KeyError, ValueError), match=message):
        load_clip(None, tmp_path / 'hf')


def _config(tmp_path, **changes):
    _save_hf(tmp_path / 'hf')
    path = tmp_path / 'hf' / 'config.json'
    config = json.loads(path.read_text())
    for key, value in changes.items():
        section, _, name = key.rpartition('.')
        (config[section] if section else config)[name] = value
    path.write_text(json.dumps(config))
    return tmp_path / 'hf'


@pytest.mark.parametrize('changes,error,message', [
    ({'text_config.hidden_act': 'gelu_pytorch_tanh', 'vision_config.hidden_act':
      'gelu_pytorch_tanh'}, ValueError, r"hidden_act='gelu_pytorch_tanh' has no open_clip"),
    ({'text_config.hidden_act': 'gelu'}, ValueError, 'towers use different activations'),
    ({'text_config.eos_token_id': [50, 51]}, ValueError, r'eos_token_id=\[50, 51\]'),
    ({'text_config.eos_token_id': None}, ValueError, 'eos_token_id=None'),
    ({'model_type': 'siglip'}, ValueError, "model_type='siglip' is not a standard CLIP"),
    ({'vision_config.image_size': [32, 48]}, ValueError, r'image_size=\[32, 48\].*square'),
])
def test_unsupported_configs_are_refused(tmp_path, changes, error, message):
    with pytest.raises(error, match=message):
        load_clip(None, _config(tmp_path, **changes))


def test_bad_sources(tmp_path):
    hf_dir = _config(tmp_path)
    with pytest.raises(ValueError, match="Hugging Face.*got model='ViT-B-16'.*model=None"):
        load_clip('ViT-B-16', hf_dir)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='directory without config.json'):
        load_clip(None, tmp_path / 'empty')
    (hf_dir / 'model.safetensors').unlink()
    with pytest.raises(FileNotFoundError, match='no weights file.*model.safetensors'):
        load_clip(None, hf_dir)


def test_pooling_rule_and_config_defaults():
    assert text_pooling('clip', 2, 'c') == dict(pool_type='argmax')
    assert text_pooling('clip', [49407], 'c') == dict(pool_type='eos', eos_id=49407)
    assert text_pooling('metaclip_2', 2, 'c') == dict(pool_type='eos', eos_id=2)
    # A transformers < 4.31 config: the *_config_dict wins, completed with CLIP's defaults.
    cfg = hf_to_open_clip_config({'model_type': 'clip', 'text_config': {'eos_token_id': 2},
                                  'text_config_dict': {'hidden_size': 768},
                                  'vision_config_dict': {'patch_size': 14}})
    assert cfg['text_cfg']['width'] == 768 and cfg['text_cfg']['pool_type'] == 'eos'
    assert cfg['vision_cfg'] == dict(image_size=224, patch_size=14, head_width=64, width=768,
                                     layers=12, mlp_ratio=4.0)
    assert cfg['embed_dim'] == 512 and cfg['quick_gelu']
