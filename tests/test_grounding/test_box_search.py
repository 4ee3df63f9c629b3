"""Box search against a brute-force loop over every box."""
import itertools

import pytest
import torch

from denseclip.models.box_search import box_objective, box_search, search_boxes


def brute_force(heat: torch.Tensor, alpha: float, boxes) -> tuple[tuple[int, ...], float]:
    """The first best box of ``boxes`` (x1, y1, x2, y2 order), sums taken pixel by pixel."""
    H, W = heat.shape
    total = float(heat.double().sum())
    best, best_value = None, -float('inf')
    for x1, y1, x2, y2 in boxes:
        if not (0 <= x1 < x2 < W and 0 <= y1 < y2 < H):
            continue
        inside = float(heat[y1:y2 + 1, x1:x2 + 1].double().sum())
        value = inside / (total + 1e-8) - alpha * (x2 - x1 + 1) * (y2 - y1 + 1) / (H * W)
        if value > best_value + 1e-12:
            best, best_value = (x1, y1, x2, y2), value
    return best, best_value


@pytest.mark.parametrize('shape,alpha', [((7, 9), 0.8), ((10, 6), 0.5), ((5, 5), 1.2)])
def test_exhaustive_search_matches_brute_force(shape, alpha):
    torch.manual_seed(0)
    heat = torch.rand(shape) ** 3
    H, W = shape
    box, value = search_boxes(heat, alpha, (0, W - 1), (0, H - 1), (0, W - 1), (0, H - 1))
    every = itertools.product(range(W), range(H), range(W), range(H))
    want, want_value = brute_force(heat, alpha, every)
    assert tuple(box.tolist()) == want
    assert value == pytest.approx(want_value, abs=1e-9)
    assert float(box_objective(heat, box[None], alpha)) == pytest.approx(want_value, abs=1e-9)


def test_ranges_are_clipped_and_respected():
    torch.manual_seed(1)
    heat = torch.rand(8, 8)
    box, value = search_boxes(heat, 0.7, (-3, 2), (1, 3), (4, 20), (5, 6))
    every = itertools.product(range(0, 3), range(1, 4), range(4, 8), range(5, 7))
    want, want_value = brute_force(heat, 0.7, every)
    assert tuple(box.tolist()) == want and value == pytest.approx(want_value, abs=1e-9)


def test_coarse_to_fine_matches_an_explicit_two_stage_loop():
    torch.manual_seed(2)
    heat = torch.rand(40, 48) ** 4
    heat[10:25, 20:40] += 2
    d, alpha = 8, 0.8
    box, _ = box_search(heat, alpha, downsample=d)
    coarse = torch.nn.functional.interpolate(heat[None, None], (5, 6), mode='bilinear',
                                             align_corners=False)[0, 0]
    anchor, _ = brute_force(coarse, alpha, itertools.product(range(6), range(5), range(6),
                                                              range(5)))
    ranges = [range(c * d - d, c * d + d + 1) for c in anchor]
    want, _ = brute_force(heat, alpha, itertools.product(*ranges))
    assert tuple(box.tolist()) == want


def test_block_is_found():
    heat = torch.zeros(224, 224)
    heat[48:128, 32:96] = 1.0  # x 32..95, y 48..127
    box, _ = box_search(heat, alpha=1.0)
    assert box.tolist() == [32, 48, 95, 127]


def test_fine_stage_reaches_only_d_pixels_past_the_coarse_box():
    # As released: rows 50..130 end between the coarse samples 123.5 and 131.5, the coarse box
    # ends at row 15 * 8 = 120 and the refinement stops at 128.
    heat = torch.zeros(224, 224)
    heat[50:131, 30:101] = 1.0
    box, _ = box_search(heat, alpha=1.0)
    assert box.tolist() == [30, 50, 100, 128]


def test_bad_maps_are_refused():
    with pytest.raises(ValueError, match='at least 2x2'):
        box_search(torch.ones(1, 5), 0.8)
    with pytest.raises(ValueError, match='non-negative'):
        box_search(-torch.ones(4, 4), 0.8)
    with pytest.raises(ValueError, match='downsample'):
        box_search(torch.ones(4, 4), 0.8, downsample=0)
