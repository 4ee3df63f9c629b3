"""The differentiable text encoder and the prompt learners, against open_clip's own encode_text."""
import open_clip
import pytest
import torch

from conftest import TINY_VIT, make_clip
from denseclip.models.text import (ContextPrompt, OpenCLIPTextEncoder, TemplatePrompt,
                                   build_text_classifier)

# Eight words of one BPE token each: learned contexts set to their embeddings must give exactly
# CLIP's encoding of the sentence they spell.
WORDS = 'a photo of one very nice big red'


@pytest.fixture(scope='module')
def clip():
    return make_clip(TINY_VIT)


@pytest.fixture(scope='module')
def tokenizer():
    return open_clip.get_tokenizer('ViT-B-16')


def test_encode_tokens_equals_open_clip(clip, tokenizer):
    encoder = OpenCLIPTextEncoder(clip=clip)
    tokens = tokenizer(['a photo of a car.', 'traffic light', 'x'])
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_tokens(tokens), clip.encode_text(tokens),
                                   atol=1e-5, rtol=1e-5)


def test_encode_prompts_has_a_template_axis(clip, tokenizer):
    encoder = OpenCLIPTextEncoder(clip=clip)
    with torch.no_grad():
        got = encoder.encode_prompts(['car', 'road'], ['a {}.', 'the {} here'])  # (Q, T, D)
        want = clip.encode_text(tokenizer(['a road.', 'the car here']))
    assert got.shape == (2, 2, TINY_VIT['embed_dim'])
    torch.testing.assert_close(got[1, 0], want[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[0, 1], want[1], atol=1e-5, rtol=1e-5)


def test_a_prompt_longer_than_the_context_is_refused_not_cut(clip, tokenizer):
    """Two names that differ only after token 77 would get one embedding from open_clip's
    truncating tokenizer: the encoder refuses them, naming the class and its token count.
    A prompt of exactly 77 tokens fits and is CLIP's encoding."""
    encoder = OpenCLIPTextEncoder(clip=clip)
    fits = ' '.join(['dog'] * 73)  # 'a ' + 73 words + '.' + start/end: 77 tokens
    assert int(tokenizer([f'a {fits}.'], context_length=100)[0].argmax()) == 76
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_prompts([fits], ['a {}.'])[0, 0],
                                   clip.encode_text(tokenizer([f'a {fits}.']))[0],
                                   atol=1e-5, rtol=1e-5)
    too_long = fits + ' cat'  # 78 tokens
    with pytest.raises(ValueError, match=r"class 'dog dog .* cat': the prompt 'a dog .* cat\.' "
                                         r"is 78 tokens; the text encoder's context holds 77 "
                                         r".*\(1 of 2 too long\)"):
        encoder.encode_prompts(['car', too_long], ['a {}.'])


def test_context_prompt_with_word_embeddings_is_the_sentence(clip, tokenizer):
    """[SOS, ctx_1..8, name, EOS] with ctx = the embeddings of eight words is CLIP's encoding of
    'words name': checks the sequence layout and the EOS index argmax + 8 together."""
    encoder = OpenCLIPTextEncoder(clip=clip, context_length=13)
    prompt = ContextPrompt(width=encoder.width)
    words = tokenizer([WORDS])[0, 1:9]  # the eight word tokens between SOS and EOS
    assert int(tokenizer([WORDS])[0].argmax()) == 9, 'each word must be one BPE token'
    with torch.no_grad():
        prompt.contexts.copy_(clip.token_embedding(words)[None])
        got = prompt(encoder, ['car', 'traffic light', 'sky'])[:, 0]  # (K, D)
        want = clip.encode_text(tokenizer([f'{WORDS} {n}' for n in
                                           ('car', 'traffic light', 'sky')]))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_context_sets_are_independent(clip):
    encoder = OpenCLIPTextEncoder(clip=clip, context_length=13)
    prompt = ContextPrompt(width=encoder.width, num_sets=3)
    with torch.no_grad():
        out = prompt(encoder, ['car', 'road'])  # (K, P, D)
        single = ContextPrompt(width=encoder.width)
        single.contexts.copy_(prompt.contexts[2:3])
        torch.testing.assert_close(out[:, 2], single(encoder, ['car', 'road'])[:, 0])
    assert out.shape == (2, 3, TINY_VIT['embed_dim'])
    assert not torch.allclose(out[:, 0], out[:, 1])


def test_a_name_too_long_for_the_context_names_the_class():
    encoder = OpenCLIPTextEncoder(clip=make_clip(TINY_VIT), context_length=13)
    prompt = ContextPrompt(width=encoder.width)
    with pytest.raises(ValueError, match=r"'chest of drawers and more' is 5 BPE tokens.*"
                                         r"name_length=3.*Shorten"):
        prompt(encoder, ['car', 'chest of drawers and more'])


def test_frozen_encoder_passes_gradients_and_keeps_its_weights():
    """DenseCLIP issue #28: the text tower must not move, the contexts must learn."""
    clip = make_clip(TINY_VIT)
    encoder = OpenCLIPTextEncoder(clip=clip, context_length=13)  # frozen by default
    prompt = ContextPrompt(width=encoder.width)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    contexts = prompt.contexts.detach().clone()
    params = list(encoder.parameters()) + list(prompt.parameters())
    # lr > 0 and weight decay on every parameter, as a careless optimizer config would have
    optimizer = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1)
    loss = prompt(encoder, ['car', 'road']).pow(2).sum()
    loss.backward()
    assert prompt.contexts.grad is not None and prompt.contexts.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())
    optimizer.step()
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not torch.equal(prompt.contexts, contexts)


def test_truncated_context_keeps_the_first_positions():
    clip = make_clip(TINY_VIT)
    encoder = OpenCLIPTextEncoder(clip=clip, context_length=13)
    assert encoder.positional_embedding.shape[0] == 13
    torch.testing.assert_close(encoder.positional_embedding, clip.positional_embedding[:13])
    with pytest.raises(ValueError, match='14 tokens do not fit the context of 13'):
        encoder(torch.zeros(1, 14, encoder.width), torch.zeros(1, dtype=torch.long))


def test_template_prompt_averaged_is_the_cached_classifier(clip):
    """The training-free classifier is the template prompt averaged over T and renormalised."""
    encoder = OpenCLIPTextEncoder(clip=clip)
    templates = ['a photo of a {}.', 'a {} in the scene.']
    with torch.no_grad():
        emb = TemplatePrompt(templates)(encoder, ['car', 'road'])  # (Q, T, D)
    want = torch.nn.functional.normalize(
        torch.nn.functional.normalize(emb, dim=-1).mean(1), dim=-1)
    got = build_text_classifier(encoder, None, ['car', 'road'], templates).embeddings
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
