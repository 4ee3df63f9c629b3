"""CLIPDINOiserRefiner against computations written from the released code's formulas."""
from __future__ import annotations

import pytest
import torch
from clip_dinoiser_helpers import TINY_CLIP
from conftest import make_clip
from safetensors.torch import save_file

from denseclip.models.backbones import CLIPViT
from denseclip.models.refiners.clip_dinoiser import (CLIPDINOiserRefiner,
                                                     clip_dinoiser_guidance,
                                                     found_background_override)
from denseclip.registry import MODELS

WIDTH = TINY_CLIP['vision_cfg']['width']


@pytest.fixture(scope='module')
def backbone():
    return CLIPViT(model=make_clip(TINY_CLIP), dense=dict(type='MaskCLIPAttention')).eval()


def ln2_outputs(backbone, images):
    """LN2 output of every block, caught by forward hooks during the unchanged trunk."""
    seen = {}
    handles = [block.ln_2.register_forward_hook(
        lambda m, i, o, n=n: seen.__setitem__(n, o)) for n, block in enumerate(backbone.blocks)]
    try:
        dense = backbone.forward_dense(images)
    finally:
        for handle in handles:
            handle.remove()
    return dense, seen


def test_guidance_is_ln2_of_block_minus_3(backbone):
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 96)  # 4x6 grid, H != W
    dense, seen = ln2_outputs(backbone, images)
    L = len(backbone.blocks)
    g = clip_dinoiser_guidance(backbone.blocks, dense.tokens, dense.grid)  # (B, D, h, w)
    expected = seen[L - 3][:, 1:].transpose(1, 2).reshape(2, WIDTH, 4, 6)
    torch.testing.assert_close(g, expected, rtol=1e-5, atol=1e-5)
    for other in (L - 4, L - 2):  # neighbouring blocks give different features
        wrong = seen[other][:, 1:].transpose(1, 2).reshape(2, WIDTH, 4, 6)
        assert (g - wrong).abs().max() > 1e-2


def test_pooling_matches_explicit_formula(backbone):
    torch.manual_seed(1)
    images = torch.randn(1, 3, 48, 80)  # 3x5 grid
    refiner = CLIPDINOiserRefiner(in_channels=WIDTH, proj_channels=8, gamma=0.2).eval()
    dense, seen = ln2_outputs(backbone, images)
    with torch.no_grad():
        out = refiner(dense.feats, dense, backbone)
        G = seen[len(backbone.blocks) - 3][:, 1:].transpose(1, 2).reshape(1, WIDTH, 3, 5)
        P = refiner.obj_proj(G)[0].flatten(1)  # (8, N)
    F_ = dense.feats[0].flatten(1)  # (E, N)
    N = P.shape[1]
    C = torch.zeros(N, N)
    for i in range(N):
        for j in range(N):
            c = P[:, i] @ P[:, j] / (P[:, i].norm() * P[:, j].norm())
            C[i, j] = c if c >= 0.2 else 0.0
    assert 0 < (C == 0).sum() < N * N - N  # the threshold removes some, not all, pairs
    expected = torch.stack([(C[i] * F_).sum(1) / (C[i].sum() + 1e-6) for i in range(N)], 1)
    torch.testing.assert_close(out[0].flatten(1), expected, rtol=1e-4, atol=1e-5)


def test_refiner_runs_in_float32_under_autocast(backbone):
    images = torch.randn(1, 3, 64, 48)
    refiner = CLIPDINOiserRefiner(in_channels=WIDTH, proj_channels=8).eval()
    with torch.no_grad():
        dense = backbone.forward_dense(images)
        expected = refiner(dense.feats, dense, backbone)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = refiner(dense.feats.bfloat16(), dense, backbone)
    assert out.dtype == torch.float32 and out.shape == dense.feats.shape
    torch.testing.assert_close(out, expected, rtol=2e-2, atol=2e-2)  # bf16 input features only


def test_found_override_on_hand_made_probabilities():
    probs = torch.tensor([[0.50, 0.995, 0.30, 0.10],   # background class 0
                          [0.30, 0.003, 0.40, 0.20],
                          [0.20, 0.002, 0.30, 0.70]]).reshape(1, 3, 2, 2)
    salient = torch.tensor([0.2, 0.1, 0.9, 0.5]).reshape(1, 1, 2, 2)
    out = found_background_override(probs, salient, delta=0.99)
    # patch 0: uncertain, not salient -> p0 = 1; patch 1: certain (0.995) -> unchanged;
    # patch 2: salient -> unchanged; patch 3: uncertain, b = 0.5 counts as not salient -> p0 = 1.
    expected = probs.clone()
    expected[0, 0, 0, 0] = 1.0
    expected[0, 0, 1, 1] = 1.0
    torch.testing.assert_close(out, expected)
    assert probs[0, 0, 0, 0] == 0.5  # input untouched
    other = found_background_override(probs, salient, delta=0.99, background_index=2)
    assert other[0, 2, 0, 0] == 1.0 and other[0, 0, 0, 0] == 0.5
    # Batched: each image uses its own saliency (the released reshape assumed B = 1).
    batch = found_background_override(probs.repeat(2, 1, 1, 1),
                                      torch.cat([salient, torch.ones_like(salient)]))
    torch.testing.assert_close(batch[0], expected[0])
    torch.testing.assert_close(batch[1], probs[0])


def test_override_background_uses_refiner_head(backbone):
    images = torch.randn(1, 3, 64, 64)
    dense = backbone.forward_dense(images)
    refiner = CLIPDINOiserRefiner(in_channels=WIDTH, proj_channels=8, apply_found=True)
    with torch.no_grad():
        refiner.bkg_decoder.bias.fill_(-50.0)  # nothing salient
        probs = torch.full((1, 3, 4, 4), 1 / 3)
        out = refiner.override_background(probs, dense, backbone)
    assert torch.all(out[:, 0] == 1.0) and torch.equal(out[:, 1:], probs[:, 1:])
    refiner.apply_found = False
    assert refiner.override_background(probs, dense, backbone) is probs


def _heads(seed):
    torch.manual_seed(seed)
    return CLIPDINOiserRefiner(in_channels=WIDTH, proj_channels=8).state_dict()


def test_loads_released_layout_and_ours(tmp_path):
    state = _heads(3)
    released = tmp_path / 'last.pt'  # train.py: {'epoch': ..., 'model_state_dict': {...}}
    torch.save({'epoch': 99, 'model_state_dict': state}, released)
    ours = tmp_path / 'heads.safetensors'
    save_file(state, str(ours))
    for path in (released, ours):
        refiner = MODELS.build(dict(type='CLIPDINOiserRefiner', in_channels=WIDTH,
                                    proj_channels=8, checkpoint=str(path)))
        for key, value in refiner.state_dict().items():
            torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_checkpoint_mismatch_lists_keys(tmp_path):
    state = _heads(4)
    wrong_width = tmp_path / 'heads8.safetensors'
    save_file(state, str(wrong_width))
    with pytest.raises(ValueError, match=r'shape mismatch \(2\).*obj_proj.weight'):
        CLIPDINOiserRefiner(in_channels=WIDTH, proj_channels=4, checkpoint=wrong_width)
    del state['bkg_decoder.bias']
    incomplete = tmp_path / 'incomplete.safetensors'
    save_file(state, str(incomplete))
    with pytest.raises(ValueError, match=r"missing \(1\): \['bkg_decoder.bias'\]"):
        CLIPDINOiserRefiner(in_channels=WIDTH, proj_channels=8, checkpoint=incomplete)
    with pytest.raises(FileNotFoundError, match='missing.pt'):
        CLIPDINOiserRefiner(checkpoint=tmp_path / 'missing.pt')
