"""Loading CLIP through every accepted form gives the same model; errors name the problem."""
from __future__ import annotations

import fractions

import open_clip
import pytest
import torch
from conftest import OPENAI_RN, OPENAI_VIT, TINY_VIT, make_clip
from open_clip.transformer import QuickGELU

from denseclip.clip import WeightsNotFoundError, infer_openai_config, load_clip, read_state_dict


def _outputs(model, seed=1):
    torch.manual_seed(seed)
    image = torch.randn(2, 3, 64, 64)
    text = open_clip.get_tokenizer('ViT-B-16')(['a red circle', 'grass'])
    with torch.no_grad():
        return model.encode_image(image), model.encode_text(text)


def _save(model, path, kind):
    state = model.state_dict()
    if kind == 'safetensors':
        from safetensors.torch import save_file
        save_file(state, str(path))
    elif kind == 'wrapped':  # a training checkpoint: {'state_dict': {'module.' + key: ...}}
        torch.save({'state_dict': {f'module.{k}': v for k, v in state.items()}, 'epoch': 3},
                   path)
    elif kind == 'fp16':  # OpenAI ships half-precision weights
        torch.save({k: v.half() for k, v in state.items()}, path)
    else:
        torch.save(state, path)


@pytest.mark.parametrize('suffix,kind', [('.pt', 'plain'), ('.pth', 'wrapped'),
                                         ('.bin', 'plain'), ('.safetensors', 'safetensors')])
def test_every_file_form_gives_identical_outputs(tiny_vit_config, tmp_path, suffix, kind):
    model = make_clip(TINY_VIT)
    path = tmp_path / f'weights{suffix}'
    _save(model, path, kind)
    loaded, source = load_clip(tiny_vit_config, path)
    for got, want in zip(_outputs(loaded), _outputs(model)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert source.checkpoint == str(path) and source.quick_gelu


def test_openai_jit_archive_loads_and_means_quickgelu(tmp_path):
    model = make_clip(OPENAI_VIT)
    image = torch.randn(1, 3, 64, 64)
    text = open_clip.get_tokenizer('ViT-B-16')(['x'])
    traced = torch.jit.trace(model, (image, text), strict=False, check_trace=False)
    path = tmp_path / 'ViT-tiny.pt'
    torch.jit.save(traced, str(path))
    state, is_jit = read_state_dict(path)
    assert is_jit and 'visual.proj' in state
    loaded, source = load_clip(None, path)
    assert source.quick_gelu
    for got, want in zip(_outputs(loaded), _outputs(model)):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('cfg', [OPENAI_VIT, OPENAI_RN], ids=['vit', 'resnet'])
def test_openai_state_dict_infers_architecture(tmp_path, cfg):
    model = make_clip(cfg)
    path = tmp_path / 'openai.pt'
    _save(model, path, 'fp16')
    inferred = infer_openai_config(read_state_dict(path)[0])
    vision = cfg['vision_cfg']
    for key in ('image_size', 'layers', 'width'):
        assert inferred['vision_cfg'][key] == vision[key]
    assert inferred['vision_cfg'].get('patch_size') == vision.get('patch_size')
    assert inferred['text_cfg']['layers'] == cfg['text_cfg']['layers']
    loaded, source = load_clip(None, path)
    assert source.model.startswith('inferred:') and source.quick_gelu
    assert any(isinstance(m, QuickGELU) for m in loaded.modules())
    want = _outputs(model.half().float())  # the file holds fp16 weights
    for got, ref in zip(_outputs(loaded), want):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_model_name_uses_that_configs_activation(tmp_path):
    # ViT-B-16 is plain GELU in open_clip; -quickgelu and the openai tag mean QuickGELU.
    plain, src = load_clip('RN50', None)
    assert not src.quick_gelu and not any(isinstance(m, QuickGELU) for m in plain.modules())
    quick, src = load_clip('RN50-quickgelu', None)
    assert src.quick_gelu and any(isinstance(m, QuickGELU) for m in quick.modules())


def test_hub_tag_resolves_through_the_cache_and_sets_quickgelu(monkeypatch, tmp_path):
    import huggingface_hub

    name = 'denseclip-tiny-test'
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, name, dict(TINY_VIT, quick_gelu=False))
    model = make_clip(TINY_VIT)
    path = tmp_path / 'open_clip_pytorch_model.bin'
    torch.save(model.state_dict(), path)
    monkeypatch.setattr(open_clip, 'get_pretrained_cfg', lambda m, t: (
        dict(hf_hub='timm/tiny.openai/', quick_gelu=True) if (m, t) == (name, 'openai') else {}))
    calls = []

    def cached(repo, filename, local_files_only=False, **kw):
        calls.append((repo, filename, local_files_only))
        return str(path)

    monkeypatch.setattr(huggingface_hub, 'hf_hub_download', cached)
    loaded, source = load_clip(name, 'openai')
    assert calls[0] == ('timm/tiny.openai', 'open_clip_model.safetensors', True)
    assert source.quick_gelu and any(isinstance(m, QuickGELU) for m in loaded.modules())


def test_offline_tag_without_cache_names_the_file_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as err:
        load_clip('ViT-B-16', 'openai')
    message = str(err.value)
    assert 'vit_base_patch16_clip_224.openai' in message
    assert "pretrained='/path/to/" in message and 'offline' in message
    # No chained traceback from inside the hub client.
    assert err.value.__cause__ is None
    assert err.value.__context__ is None or err.value.__suppress_context__


def test_unknown_names_list_the_valid_ones(tmp_path):
    with pytest.raises(KeyError, match='known tags:.*openai'):
        load_clip('ViT-B-16', 'no_such_tag')
    with pytest.raises(KeyError, match='not an open_clip model config; known:.*ViT-B-16'):
        load_clip('ViT-B-99', None)
    with pytest.raises(ValueError, match='model=None needs pretrained'):
        load_clip(None, None)


def test_missing_corrupt_and_mismatched_files(tiny_vit_config, tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pt'):
        load_clip(tiny_vit_config, tmp_path / 'nope.pt')
    corrupt = tmp_path / 'corrupt.pt'
    corrupt.write_bytes(b'\x80\x02not a checkpoint')
    with pytest.raises(ValueError, match='corrupt.pt: cannot read CLIP weights'):
        load_clip(tiny_vit_config, corrupt)
    other = make_clip(OPENAI_VIT)  # width 128 vs 64: every visual weight mismatches
    wrong = tmp_path / 'wrong.pt'
    torch.save(other.state_dict(), wrong)
    with pytest.raises(ValueError, match=r'wrong.pt: .*shape mismatch .*visual.conv1.weight: '
                                         r'file \(128, 3, 16, 16\) vs model \(64, 3, 16, 16\)'):
        load_clip(tiny_vit_config, wrong)
    partial = tmp_path / 'partial.pt'
    state = make_clip(TINY_VIT).state_dict()
    state.pop('visual.proj')
    state['extra.weight'] = torch.zeros(1)
    torch.save(state, partial)
    with pytest.raises(ValueError, match=r"missing \(1\): \['visual.proj'\].*unexpected \(1\)"):
        load_clip(tiny_vit_config, partial)


def test_pickled_objects_are_refused(tiny_vit_config, tmp_path):
    # weights_only=True: a file that needs arbitrary unpickling is rejected, not executed.
    path = tmp_path / 'pickle.pt'
    torch.save({'state_dict': make_clip(TINY_VIT).state_dict(), 'obj': fractions.Fraction(1, 3)},
               path)
    with pytest.raises(ValueError, match='pickle.pt: cannot read'):
        load_clip(tiny_vit_config, path)


def test_text_cache_key_covers_what_changes_the_embeddings(monkeypatch, tmp_path):
    """One set of weights loaded every way a user can: by tag (QuickGELU), as a file under the
    same name (GELU), through model-config files, and a config file edited in place. The
    segmentor's disk-cache key (CLIPSource.identity) is equal exactly where the text embeddings
    are, and a segmentor built after another with the same file never reads the other's
    cached embeddings."""
    import json

    import huggingface_hub

    from denseclip.models.segmentors import OpenVocabSegmentor

    monkeypatch.setenv('DENSECLIP_CACHE_DIR', str(tmp_path / 'cache'))
    name = 'denseclip-tiny-test'
    monkeypatch.setitem(open_clip.factory._MODEL_CONFIGS, name, dict(TINY_VIT, quick_gelu=False))
    weights = tmp_path / 'open_clip_pytorch_model.bin'
    torch.save(make_clip(TINY_VIT).state_dict(), weights)
    monkeypatch.setattr(open_clip, 'get_pretrained_cfg', lambda m, t: (
        dict(hf_hub='timm/tiny.openai/', quick_gelu=True) if (m, t) == (name, 'openai') else {}))
    monkeypatch.setattr(huggingface_hub, 'hf_hub_download', lambda *a, **k: str(weights))
    quick_json, plain_json, edited = (tmp_path / f'{n}.json' for n in ('quick', 'plain', 'ed'))
    quick_json.write_text(json.dumps(dict(TINY_VIT, quick_gelu=True)))
    plain_json.write_text(json.dumps(dict(TINY_VIT, quick_gelu=False)))
    edited.write_text(json.dumps(dict(TINY_VIT, quick_gelu=True)))

    def segmentor(model, pretrained):
        return OpenVocabSegmentor(
            backbone=dict(type='CLIPViT', model=model, pretrained=pretrained),
            vocabulary=['red circle', 'grass'], templates='none')

    ways = {'tag': (name, 'openai'), 'file': (name, str(weights)),
            'quick.json': (str(quick_json), str(weights)),
            'plain.json': (str(plain_json), str(weights)),
            'edited, before': (str(edited), str(weights))}
    built = {way: segmentor(*args) for way, args in ways.items()}
    edited.write_text(json.dumps(dict(TINY_VIT, quick_gelu=False)))  # edited in place
    built['edited, after'] = segmentor(str(edited), str(weights))
    keys = {way: seg.backbone.source.identity for way, seg in built.items()}
    embeddings = {way: seg.classifier.embeddings for way, seg in built.items()}
    assert all(keys.values())
    for a in built:  # one key, one set of embeddings (another key may still mean the same)
        for b in built:
            if keys[a] == keys[b]:
                torch.testing.assert_close(embeddings[a], embeddings[b], atol=1e-6, rtol=0)
    # the key is the config's content, not its file name
    assert keys['quick.json'] == keys['edited, before']
    assert keys['plain.json'] == keys['edited, after']
    # the pairs that used to share a key: tag vs file, and the config edited in place
    assert keys['tag'] != keys['file'] and keys['edited, before'] != keys['edited, after']
    assert not torch.allclose(embeddings['tag'], embeddings['file'], atol=1e-4)
    # each segmentor's embeddings are a fresh computation, not another load's cache entry
    for way, seg in built.items():
        fresh = seg.text_encoder.encode_prompts(['red circle', 'grass'], ['{}']).squeeze(1)
        torch.testing.assert_close(embeddings[way], torch.nn.functional.normalize(fresh, dim=-1),
                                   atol=1e-6, rtol=1e-5)
    assert len(list((tmp_path / 'cache' / 'text').glob('*.safetensors'))) == len(set(keys.values()))


def test_unreachable_hub_fails_at_once_with_the_fix(monkeypatch, tmp_path):
    """Without HF_HUB_OFFLINE and without network the tag fails after one short connection
    attempt (the hub client retried for about 47 s), with the file to download and the fix."""
    import socket
    import time

    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    monkeypatch.delenv('DENSECLIP_OFFLINE', raising=False)
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path))
    attempts = []

    def no_network(address, timeout=None, **kwargs):
        attempts.append((address, timeout))
        raise OSError('Network is unreachable')

    monkeypatch.setattr(socket, 'create_connection', no_network)
    monkeypatch.setattr(open_clip, 'download_pretrained',
                        lambda *a, **k: pytest.fail('no download without a network'))
    start = time.perf_counter()
    with pytest.raises(WeightsNotFoundError, match=r"huggingface\.co cannot be reached \(no "
                                                   r"network\?\)\. Download the file .* "
                                                   r"pretrained='/path/to/"):
        load_clip('ViT-B-16', 'openai')
    assert time.perf_counter() - start < 5
    assert attempts == [(('huggingface.co', 443), 3.0)]
