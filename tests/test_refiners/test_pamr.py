"""Tests for PAMR (denseclip/models/refiners/pamr.py) against independent computations."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from denseclip.models.refiners import PAMRRefiner, pamr
from denseclip.registry import MODELS


def naive_pamr(image, mask, dilations, num_iter):
    """PAMR from the equations, one pixel and one neighbour at a time, in Python floats."""
    out = []
    for img, msk in zip(image.tolist(), mask.tolist()):  # per batch element: [c][y][x]
        C, H, W = len(img), len(img[0]), len(img[0][0])

        def at(plane, y, x):  # replicate padding = clamping the index
            return plane[min(max(y, 0), H - 1)][min(max(x, 0), W - 1)]

        taps = [(dy * d, dx * d) for d in dilations for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        offsets = [t for t in taps if t != (0, 0)]
        weights = {}
        for y in range(H):
            for x in range(W):
                logit = [0.0] * len(offsets)
                for c in range(C):
                    window = [at(img[c], y + oy, x + ox) for oy, ox in taps]
                    mean = sum(window) / len(window)
                    std = math.sqrt(sum((v - mean) ** 2 for v in window) / (len(window) - 1))
                    for j, (oy, ox) in enumerate(offsets):
                        diff = abs(img[c][y][x] - at(img[c], y + oy, x + ox))
                        logit[j] += -diff / (1e-8 + 0.1 * std) / C
                top = max(logit)
                exps = [math.exp(v - top) for v in logit]
                weights[y, x] = [e / sum(exps) for e in exps]
        for _ in range(num_iter):
            msk = [
                [
                    [
                        sum(w * at(plane, y + oy, x + ox)
                            for w, (oy, ox) in zip(weights[y, x], offsets))
                        for x in range(W)
                    ]
                    for y in range(H)
                ]
                for plane in msk
            ]
        out.append(msk)
    return torch.tensor(out, dtype=mask.dtype)


def _random_inputs(B, K, H, W, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(B, 3, H, W, generator=g, dtype=dtype)
    mask = torch.randn(B, K, H, W, generator=g, dtype=dtype)
    return image, mask


def test_matches_naive_reference_dilation_1():
    # 5x5 with a flat patch, so some windows have a small sigma and others a large one.
    image, mask = _random_inputs(1, 2, 5, 5)
    image[:, :, :2, :2] = 0.5
    assert_close(pamr(image, mask, dilations=(1,), num_iter=1),
                 naive_pamr(image, mask, (1,), 1), rtol=1e-6, atol=1e-6)


def test_matches_naive_reference_two_dilations_two_iterations():
    image, mask = _random_inputs(2, 3, 5, 7, seed=1)
    assert_close(pamr(image, mask, dilations=(1, 2), num_iter=2),
                 naive_pamr(image, mask, (1, 2), 2), rtol=1e-6, atol=1e-6)


def test_matches_naive_reference_dilation_beyond_image_float32():
    # Dilation 4 on a 3x5 image: every off-centre tap lies in the replicate padding.
    image, mask = _random_inputs(1, 2, 3, 5, seed=2, dtype=torch.float32)
    out = pamr(image, mask, dilations=(2, 4), num_iter=3)
    assert out.dtype == torch.float32
    assert_close(out, naive_pamr(image.double(), mask.double(), (2, 4), 3).float(),
                 rtol=1e-5, atol=1e-5)


def test_constant_mask_stays_constant():
    image, _ = _random_inputs(2, 1, 9, 11, seed=3)
    mask = torch.tensor([-0.3, 0.2, 1.7], dtype=torch.float64).view(1, 3, 1, 1).expand(2, 3, 9, 11)
    assert_close(pamr(image, mask, dilations=(1, 2), num_iter=5), mask)


def test_constant_image_averages_replicate_shifted_neighbours():
    H, W, dilations = 6, 7, (1, 2)
    image = torch.full((1, 3, H, W), 0.8, dtype=torch.float64)
    _, mask = _random_inputs(1, 2, H, W, seed=4)
    expected = mask
    for _ in range(2):
        shifted = []
        for d in dilations:
            padded = F.pad(expected, [d] * 4, mode='replicate')
            shifted += [padded[..., d + dy * d:d + dy * d + H, d + dx * d:d + dx * d + W]
                        for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
        expected = torch.stack(shifted).mean(0)
    assert_close(pamr(image, mask, dilations=dilations, num_iter=2), expected)


def test_each_iteration_is_a_convex_combination():
    image, mask = _random_inputs(2, 4, 10, 13, seed=5)
    mask = 3.0 * mask + 5.0  # away from 0 and 1, so a wrong normalisation shows
    prev = mask
    for steps in range(1, 5):
        out = pamr(image, mask, dilations=(1, 3), num_iter=steps)
        assert (out.amin(dim=(2, 3)) >= prev.amin(dim=(2, 3)) - 1e-9).all()
        assert (out.amax(dim=(2, 3)) <= prev.amax(dim=(2, 3)) + 1e-9).all()
        prev = out
    assert (prev.amax(dim=(2, 3)) - prev.amin(dim=(2, 3)) <
            mask.amax(dim=(2, 3)) - mask.amin(dim=(2, 3))).all()


def test_edges_stop_propagation():
    H, W = 12, 24
    image = torch.full((1, 3, H, W), -1.8)
    image[..., W // 2:] = 2.1  # left half black, right half white (CLIP-normalised)
    g = torch.Generator().manual_seed(6)
    mask = torch.rand(1, 2, H, W, generator=g)  # noise in [0, 1) on the left
    mask[..., W // 2:] += 10.0  # and in [10, 11) on the right

    out = pamr(image, mask, dilations=(1, 2), num_iter=10)
    left, right = out[..., :W // 2], out[..., W // 2:]
    assert left.max() < 1.0 + 1e-5 and right.min() > 10.0 - 1e-5
    assert left.std() < 0.5 * mask[..., :W // 2].std()  # noise is smoothed within each side

    # Without the edge, the same propagation does mix the two sides.
    flat = pamr(torch.zeros_like(image), mask, dilations=(1, 2), num_iter=10)
    assert flat[..., :W // 2].max() > 2.0 and flat[..., W // 2:].min() < 9.0


def test_refiner_builds_from_registry_and_wraps_pamr():
    refiner = MODELS.build(dict(type='PAMRRefiner', num_iter=3, dilations=[1, 2]))
    assert isinstance(refiner, PAMRRefiner)
    assert refiner.dilations == (1, 2) and 'num_iter=3' in repr(refiner)
    image, logits = _random_inputs(1, 5, 17, 10, seed=7, dtype=torch.float32)
    out = refiner(image, logits)
    assert out.shape == (1, 5, 17, 10) and torch.isfinite(out).all()
    assert_close(out, pamr(image, logits, dilations=(1, 2), num_iter=3))
    assert PAMRRefiner().dilations == (8, 16) and PAMRRefiner().num_iter == 10


def test_zero_iterations_is_identity():
    image, mask = _random_inputs(1, 2, 4, 4, seed=8)
    assert pamr(image, mask, num_iter=0) is mask


@pytest.mark.parametrize(
    'image_shape, mask_shape, match',
    [
        ((1, 3, 5, 5), (1, 2, 5, 6), r'image \(1, 3, 5, 5\) and mask \(1, 2, 5, 6\) differ'),
        ((2, 3, 5, 5), (1, 2, 5, 5), r'image \(2, 3, 5, 5\) and mask \(1, 2, 5, 5\) differ'),
        ((3, 5, 5), (1, 2, 5, 5), r'image has shape \(3, 5, 5\); expected 4-D'),
        ((1, 3, 5, 5), (2, 5, 5), r'mask has shape \(2, 5, 5\); expected 4-D'),
    ],
)
def test_rejects_bad_shapes(image_shape, mask_shape, match):
    with pytest.raises(ValueError, match=match):
        pamr(torch.zeros(image_shape), torch.zeros(mask_shape))


def test_rejects_bad_types_and_settings():
    image, mask = torch.zeros(1, 3, 5, 5), torch.zeros(1, 2, 5, 5)
    with pytest.raises(TypeError, match='mask must be a floating-point Tensor, got torch.int64'):
        pamr(image, mask.long())
    with pytest.raises(TypeError, match='image must be a floating-point Tensor, got ndarray'):
        pamr(image.numpy(), mask)
    for dilations in [(), (0, 2), (1.5,)]:
        with pytest.raises(ValueError, match='dilations=.*expected a non-empty sequence'):
            pamr(image, mask, dilations=dilations)
    with pytest.raises(ValueError, match='num_iter=-1; expected an int >= 0'):
        PAMRRefiner(num_iter=-1)
