"""``name_mask``: masked average of dense features, cosine, softmax, max over synonyms."""
import pytest
import torch

from denseclip.apis.mask_naming import mask_weights, name_mask


def reference_name_mask(features, mask, text, query_to_class, logit_scale):
    """Independent computation: loops over feature cells, explicit coverage fractions."""
    E, h, w = features.shape
    H, W = mask.shape
    total = torch.zeros(E, dtype=torch.float64)
    weight_sum = 0.0
    for i in range(h):
        for j in range(w):
            # cell (i, j) covers rows [i*H/h, (i+1)*H/h) and columns alike (H, W multiples here)
            cell = mask[i * H // h:(i + 1) * H // h, j * W // w:(j + 1) * W // w]
            frac = cell.double().mean().item()
            total += frac * features[:, i, j].double()
            weight_sum += frac
    pooled = total / weight_sum
    cos = torch.stack([torch.dot(pooled, t.double()) / (pooled.norm() * t.double().norm())
                       for t in text])
    probs = torch.exp(logit_scale * cos) / torch.exp(logit_scale * cos).sum()
    K = int(query_to_class.max()) + 1
    return torch.stack([probs[query_to_class == k].max() for k in range(K)])


@pytest.mark.parametrize('shape', [(64, 48), (32, 32)])
def test_name_mask_matches_independent_computation(shape):
    gen = torch.Generator().manual_seed(0)
    E, h, w = 16, shape[0] // 8, shape[1] // 8
    features = torch.randn(E, h, w, generator=gen) * 3  # unnormalised, as encode_dense gives
    mask = torch.rand(shape, generator=gen) > 0.6
    text = torch.randn(7, E, generator=gen)
    query_to_class = torch.tensor([0, 0, 1, 2, 2, 2, 3])  # synonyms for classes 0 and 2
    expected = reference_name_mask(features, mask, text, query_to_class, 30.0)
    top = name_mask(features, mask, text, query_to_class, logit_scale=30.0, top_k=4)
    order = torch.argsort(expected, descending=True)
    assert [k for k, _ in top] == order.tolist()
    torch.testing.assert_close(torch.tensor([p for _, p in top], dtype=torch.float64),
                               expected[order], rtol=1e-5, atol=1e-6)


def test_name_mask_picks_the_region_class():
    # Two regions with features along two text directions: each mask gets its own class.
    text = torch.eye(3, 8)
    features = torch.zeros(8, 4, 4)
    features[0, :, :2] = 1.0  # left half ~ class 0
    features[2, :, 2:] = 1.0  # right half ~ class 2
    left = torch.zeros(32, 32, dtype=torch.bool)
    left[:, :12] = True
    q2c = torch.arange(3)
    assert name_mask(features, left, text, q2c, 100.0, top_k=1)[0][0] == 0
    assert name_mask(features, ~left, text, q2c, 100.0, top_k=1)[0][0] == 2


def test_mask_weights_area_keeps_thin_masks():
    # A one-pixel line inside a 16-pixel cell: nearest resizing can drop it, area keeps 1/16.
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[5, :] = True
    weights = mask_weights(mask, (4, 4))
    torch.testing.assert_close(weights[0], torch.full((4,), 1 / 16))
    assert weights[1:].sum() == 0
    torch.testing.assert_close(mask_weights(torch.ones(30, 20, dtype=torch.bool), (3, 2)),
                               torch.ones(3, 2))


def test_name_mask_errors():
    features, text, q2c = torch.randn(4, 2, 2), torch.randn(3, 4), torch.arange(3)
    with pytest.raises(ValueError, match='mask is empty'):
        name_mask(features, torch.zeros(8, 8, dtype=torch.bool), text, q2c, 10.0)
    with pytest.raises(TypeError, match='torch.bool'):
        name_mask(features, torch.ones(8, 8), text, q2c, 10.0)
    with pytest.raises(ValueError, match='E=4 channels but the text embeddings E=5'):
        name_mask(features, torch.ones(8, 8, dtype=torch.bool), torch.randn(3, 5), q2c, 10.0)
