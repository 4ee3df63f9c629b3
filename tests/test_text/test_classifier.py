import hashlib
import logging
import os
from pathlib import Path

import open_clip
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from denseclip.models.text import (TextClassifier, Vocabulary, build_text_classifier,
                                   default_cache_dir, encode_text_trimmed, file_fingerprint,
                                   get_templates)

VISION_CFG = dict(image_size=32, patch_size=16, width=32, layers=1, head_width=16)
TEXT_CFG = dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2)
PROMPTS = [
    'car',
    'a photo of a car.',
    'a jpeg corrupted photo of the chest of drawers in a video game.',
    # longer than the context: the tokenizer truncates it and puts EOT at position 76
    ' '.join(['a very long description of a street scene with many words'] * 10),
]


def tiny_clip(cls=open_clip.model.CLIP, **text_cfg) -> torch.nn.Module:
    torch.manual_seed(0)
    return cls(embed_dim=24, vision_cfg=VISION_CFG, text_cfg={**TEXT_CFG, **text_cfg}).eval()


@pytest.fixture(scope='module')
def tokenizer():
    return open_clip.get_tokenizer('ViT-B-16')  # the bundled BPE vocabulary, no download


@pytest.fixture(scope='module')
def model():
    return tiny_clip()


class Spy:
    """Counts text-tower forwards: the transformer blocks and ``encode_text``."""

    def __init__(self, model, monkeypatch):
        self.lengths = []
        self.encode_text_calls = 0
        original = model.encode_text

        def encode_text(*args, **kwargs):
            self.encode_text_calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(model, 'encode_text', encode_text)
        transformer = model.text.transformer if hasattr(model, 'text') else model.transformer
        handle = transformer.register_forward_pre_hook(
            lambda _, args, kwargs: self.lengths.append(args[0].shape[1]), with_kwargs=True)
        self.remove = handle.remove

    @property
    def forwards(self):
        return len(self.lengths)


@pytest.mark.parametrize('text_cfg', [{}, dict(proj_bias=True), dict(pool_type='eos',
                                                                     eos_id=49407)])
def test_trimmed_equals_encode_text(tokenizer, text_cfg, monkeypatch):
    model = tiny_clip(**text_cfg)
    for prompts in (PROMPTS[:3], PROMPTS, PROMPTS[-1:]):
        tokens = tokenizer(prompts)
        with torch.no_grad():
            expected = model.encode_text(tokens)
            spy = Spy(model, monkeypatch)
            got = encode_text_trimmed(model, tokens)
            spy.remove()
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        # the transformer saw the tokens up to the last EOT only
        eot = (tokens == 49407).int().argmax(dim=-1)
        assert spy.lengths == [int(eot.max()) + 1] and spy.encode_text_calls == 0
    assert spy.lengths == [77]  # the truncated prompt fills the whole context


@pytest.mark.parametrize('build', [
    lambda: tiny_clip(no_causal_mask=True),
    lambda: tiny_clip(pool_type='last'),
    lambda: tiny_clip(cls=open_clip.model.CustomTextCLIP),
])
def test_trimmed_falls_back(tokenizer, build, monkeypatch):
    model = build()
    tokens = tokenizer(PROMPTS[:2])
    with torch.no_grad():
        expected = model.encode_text(tokens)
        spy = Spy(model, monkeypatch)
        got = encode_text_trimmed(model, tokens)
    assert spy.encode_text_calls == 1 and spy.lengths == [77]
    torch.testing.assert_close(got, expected, atol=0, rtol=0)


def independent_embedding(model, tokenizer, name, templates):
    with torch.no_grad():
        emb = model.encode_text(tokenizer([t.format(name) for t in templates]))  # (T, D)
    emb = emb / emb.norm(dim=-1, keepdim=True)
    mean = emb.mean(dim=0)
    return mean / mean.norm()


def test_classifier_equals_independent_computation(model, tokenizer):
    templates = get_templates('openai_imagenet')[:7] + [PROMPTS[2] + ' {}']
    vocab = Vocabulary.from_list(['road', ['person', 'pedestrian'], 'traffic light'])
    # a prompt longer than the context is refused (open_clip's tokenizer would cut it)
    with pytest.raises(ValueError, match=r"class 'road': the prompt .* is 113 tokens; the "
                                         r"text encoder's context holds 77"):
        build_text_classifier(model, tokenizer, vocab, templates + [PROMPTS[-1] + ' {}'])
    # batch_size 5 splits the 32 prompts across query boundaries
    clf = build_text_classifier(model, tokenizer, vocab, templates, batch_size=5)
    assert isinstance(clf, TextClassifier)
    assert clf.embeddings.shape == (4, 24) and clf.embeddings.dtype == torch.float32
    assert not clf.embeddings.is_inference() and not clf.embeddings.requires_grad
    expected = torch.stack([independent_embedding(model, tokenizer, name, templates)
                            for name in ['road', 'person', 'pedestrian', 'traffic light']])
    torch.testing.assert_close(clf.embeddings, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(clf.query_to_class, torch.tensor([0, 1, 1, 2]))
    assert clf.class_names == ['road', 'person', 'traffic light'] and clf.num_classes == 3
    assert clf.vocabulary == vocab and clf.templates == tuple(templates)
    # synonyms are separate queries with their own embeddings
    assert not torch.allclose(clf.embeddings[1], clf.embeddings[2])


def test_classifier_accepts_lists_and_template_names(model, tokenizer):
    clf = build_text_classifier(model, tokenizer, ['car', ['person', 'rider']], 'none')
    assert clf.templates == ('{}',)
    expected = F.normalize(model.encode_text(tokenizer(['car', 'person', 'rider'])), dim=-1)
    torch.testing.assert_close(clf.embeddings, expected.detach(), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='batch_size=0'):
        build_text_classifier(model, tokenizer, ['car'], 'none', batch_size=0)


def test_cache_hit_skips_encoder(model, tokenizer, tmp_path, monkeypatch):
    templates = get_templates('openai_imagenet')[:4]
    vocab = Vocabulary.from_list(['road', ['person', 'pedestrian']])
    first = build_text_classifier(model, tokenizer, vocab, templates, model_id='tiny',
                                  cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == '.safetensors'

    spy = Spy(model, monkeypatch)
    second = build_text_classifier(model, tokenizer, vocab, templates, model_id='tiny',
                                   cache_dir=tmp_path)
    assert spy.forwards == 0 and spy.encode_text_calls == 0
    assert torch.equal(second.embeddings, first.embeddings)
    assert torch.equal(second.query_to_class, first.query_to_class)

    # the same queries grouped differently reuse the embeddings with their own classes
    regrouped = build_text_classifier(model, tokenizer, ['road', 'person', 'pedestrian'],
                                      templates, model_id='tiny', cache_dir=tmp_path)
    assert spy.forwards == 0 and torch.equal(regrouped.embeddings, first.embeddings)
    assert torch.equal(regrouped.query_to_class, torch.tensor([0, 1, 2]))


@pytest.mark.parametrize('change', ['templates', 'vocabulary', 'model_id'])
def test_cache_misses_on_any_change(model, tokenizer, tmp_path, monkeypatch, change):
    args = dict(vocabulary=['road', 'car'], templates=['a {}.', 'the {}.'], model_id='tiny')
    build_text_classifier(model, tokenizer, cache_dir=tmp_path, **args)
    args[change] = {'templates': ['a {}.', 'The {}.'], 'vocabulary': ['road', 'Car'],
                    'model_id': 'tiny-2'}[change]
    spy = Spy(model, monkeypatch)
    build_text_classifier(model, tokenizer, cache_dir=tmp_path, **args)
    assert spy.forwards > 0
    assert len(list(tmp_path.iterdir())) == 2


def test_no_identity_never_writes(model, tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv('DENSECLIP_CACHE_DIR', str(tmp_path / 'env'))
    build_text_classifier(model, tokenizer, ['road'], 'none', cache_dir=tmp_path / 'arg')
    build_text_classifier(model, tokenizer, ['road'], 'none')
    assert list(tmp_path.iterdir()) == []


def test_default_cache_dir(model, tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv('DENSECLIP_CACHE_DIR', str(tmp_path))
    assert default_cache_dir() == tmp_path / 'text'
    build_text_classifier(model, tokenizer, ['road'], 'none', model_id='tiny')
    assert len(list((tmp_path / 'text').glob('*.safetensors'))) == 1
    monkeypatch.delenv('DENSECLIP_CACHE_DIR')
    home = Path(os.path.expanduser('~'))
    assert default_cache_dir() == home / '.cache' / 'denseclip' / 'text'


@pytest.mark.parametrize('corrupt', [
    lambda path: path.write_bytes(b'\x00garbage, not a safetensors file'),
    lambda path: path.write_bytes(b''),
    lambda path: save_file({'embeddings': torch.zeros(7, 24)}, str(path)),
    lambda path: save_file({'other': torch.zeros(2, 24)}, str(path)),
])
def test_corrupt_cache_is_rewritten(model, tokenizer, tmp_path, monkeypatch, caplog, corrupt):
    args = dict(vocabulary=['road', 'car'], templates=['a {}.'], model_id='tiny',
                cache_dir=tmp_path)
    good = build_text_classifier(model, tokenizer, **args)
    (path,) = tmp_path.iterdir()
    corrupt(path)
    with caplog.at_level(logging.WARNING):
        again = build_text_classifier(model, tokenizer, **args)
    assert 'unusable' in caplog.text and str(path) in caplog.text
    torch.testing.assert_close(again.embeddings, good.embeddings, atol=1e-6, rtol=1e-6)
    # rewritten: the next build is a clean hit
    caplog.clear()
    spy = Spy(model, monkeypatch)
    third = build_text_classifier(model, tokenizer, **args)
    assert spy.forwards == 0 and caplog.text == ''
    assert torch.equal(third.embeddings, again.embeddings)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left


def test_unwritable_cache_warns(model, tokenizer, tmp_path, caplog):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    with caplog.at_level(logging.WARNING):
        clf = build_text_classifier(model, tokenizer, ['road'], 'none', model_id='tiny',
                                    cache_dir=blocker / 'cache')
    assert clf.embeddings.shape == (1, 24)
    assert 'could not write text classifier cache' in caplog.text


def test_file_fingerprint(tmp_path):
    path = tmp_path / 'weights.bin'
    path.write_bytes(b'abc' * 1000)
    assert file_fingerprint(path) == hashlib.sha256(b'abc' * 1000).hexdigest()
    # same size and mtime: the memoised digest is returned without reading the file
    stat = path.stat()
    path.write_bytes(b'xyz' * 1000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_fingerprint(str(path)) == hashlib.sha256(b'abc' * 1000).hexdigest()
    path.write_bytes(b'xyz' * 1001)
    assert file_fingerprint(path) == hashlib.sha256(b'xyz' * 1001).hexdigest()
    with pytest.raises(FileNotFoundError, match='missing.bin'):
        file_fingerprint(tmp_path / 'missing.bin')
