"""TextSpan's greedy algorithm against a transcription of the released one
(compute_complete_text_set.py ``replace_with_iterative_removal``@49f70f3) on a random pool."""
import numpy as np
import pytest
import torch

from denseclip.models.textspan import text_span, text_span_heads


def released_iterative_removal(data, text_features, texts, iters, rank):
    """The released function, transcribed (numpy SVD and projection, torch greedy loop)."""
    results = []
    u, s, vh = np.linalg.svd(data, full_matrices=False)
    vh = vh[:rank]
    text_features = vh.T.dot(np.linalg.inv(vh.dot(vh.T)).dot(vh)).dot(text_features.T).T
    data = torch.from_numpy(data).float()
    mean_data = data.mean(dim=0, keepdim=True)
    data = data - mean_data
    reconstruct = mean_data.repeat(data.shape[0], 1).numpy()
    text_features = torch.from_numpy(text_features).float()
    for _ in range(iters):
        projection = data @ text_features.T
        top_n = int(np.argmax(projection.std(axis=0).numpy()))
        results.append(texts[top_n])
        text_norm = text_features[top_n] @ text_features[top_n]  # released: @ its 1-D .T
        step = (data @ text_features[top_n] / text_norm)[:, None] * text_features[top_n][None]
        reconstruct += step.numpy()
        data = data - step
        text_features = text_features - (
            (text_features @ text_features[top_n] / text_norm)[:, None]
            * text_features[top_n][None])
    return reconstruct, results


@pytest.mark.parametrize('rank,iters', [(6, 5), (16, 8)])
def test_text_span_equals_the_released_algorithm(rank, iters):
    # iters < rank: past the rank every projected text is ~0 and the choice is rounding noise
    rng = np.random.default_rng(0)
    data = rng.normal(size=(60, 16)) @ rng.normal(size=(16, 16)) + rng.normal(size=16)
    pool = rng.normal(size=(40, 16))
    texts = [f'text {i}' for i in range(40)]
    expected, chosen = released_iterative_removal(data, pool, texts, iters=iters, rank=rank)
    ours, ours_chosen = text_span(torch.from_numpy(data).float(), torch.from_numpy(pool).float(),
                                  texts, iters=iters, rank=rank)
    assert ours_chosen == chosen
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-4, rtol=1e-4)


def test_all_texts_of_a_full_rank_pool_reconstruct_the_data():
    """With as many independent texts as dimensions, the chosen basis spans everything."""
    gen = torch.Generator().manual_seed(0)
    data, pool = torch.randn(30, 8, generator=gen), torch.randn(8, 8, generator=gen)
    rebuilt, chosen = text_span(data, pool, list('abcdefgh'), iters=8, rank=8)
    assert sorted(chosen) == list('abcdefgh')
    torch.testing.assert_close(rebuilt, data, atol=1e-5, rtol=1e-5)


def test_text_span_heads_ablates_early_layers_and_describes_the_last():
    gen = torch.Generator().manual_seed(1)
    heads = torch.randn(20, 3, 2, 8, generator=gen)  # (M, L, H, E)
    pool = torch.randn(12, 8, generator=gen)
    texts = [f't{i}' for i in range(12)]
    out, described = text_span_heads(heads, pool, texts, num_last_layers=2, iters=3, rank=5)
    torch.testing.assert_close(out[:, 0], heads[:, 0].mean(0, keepdim=True).expand(20, 2, 8))
    assert sorted(described) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    rebuilt, chosen = text_span(heads[:, 2, 1], pool, texts, iters=3, rank=5)
    assert described[2, 1] == chosen
    torch.testing.assert_close(out[:, 2, 1], rebuilt)


def test_bad_input_is_refused():
    data, pool = torch.randn(5, 4), torch.randn(3, 4)
    with pytest.raises(ValueError, match='2 texts for 3 text features'):
        text_span(data, pool, ['a', 'b'], iters=1, rank=2)
    with pytest.raises(ValueError, match=r'must be \(M, E\) and \(K, E\)'):
        text_span(data, torch.randn(3, 5), ['a', 'b', 'c'], iters=1, rank=2)
    with pytest.raises(ValueError, match=r'iters=4 must be in \[1, 3\]'):
        text_span(data, pool, ['a', 'b', 'c'], iters=4, rank=2)
    with pytest.raises(ValueError, match='num_last_layers=5'):
        text_span_heads(torch.randn(5, 2, 2, 4), pool, ['a', 'b', 'c'], num_last_layers=5)
