"""PhraseLocalizer: the box, heat map and score; clear errors on bad input."""
import numpy as np
import pytest
import torch

from conftest import OPENAI_RN, TINY_VIT, make_clip
from denseclip import PhraseLocalizer
from denseclip.toy.world import generate_scene

REPO_TOY = 'configs/grounding/regiontoken_toy-vit-p16_toy.py'


@pytest.fixture(scope='module')
def localizer():
    torch.manual_seed(0)
    return PhraseLocalizer(model=make_clip(TINY_VIT), pretrained=None,
                           heatmap=dict(n_segments=[20, 40]))


def test_region_tokens_box_heatmap_score(localizer):
    rgb = generate_scene(3, size=100).image[:, :90]  # W != H, not a multiple of the patch
    r = localizer(rgb, 'the red circle')
    assert r.box.shape == (4,) and r.box.dtype == np.float32
    x1, y1, x2, y2 = r.box
    assert 0 <= x1 < x2 <= 90 and 0 <= y1 < y2 <= 100
    assert r.heatmap.shape == (100, 90) and r.heatmap.max() == pytest.approx(1.0)
    assert -1 <= r.score <= 1
    assert r.overlay().shape == (100, 90, 3)
    x, y = r.point
    assert 0 <= x < 90 and 0 <= y < 100


def test_dilated_resnet_method():
    loc = PhraseLocalizer(method='dilated_resnet', model=make_clip(OPENAI_RN), pretrained=None,
                          input_size=64)
    r = loc(generate_scene(1, size=80).image, 'the sky')
    assert r.heatmap.shape == (80, 80) and np.isfinite(r.heatmap).all()


def test_from_toy_config_localizes_a_toy_thing():
    loc = PhraseLocalizer.from_config(REPO_TOY)
    scene = generate_scene(12)
    r = loc(scene.image, 'the ' + scene.objects[0].name)
    assert r.box.shape == (4,)


def test_empty_phrase(localizer):
    with pytest.raises(ValueError, match='phrase is empty'):
        localizer(np.zeros((64, 64, 3), np.uint8), '   ')


def test_phrase_longer_than_context(localizer):
    phrase = ' '.join(['red'] * 100)
    with pytest.raises(ValueError, match=r'102 tokens long .* context holds 77'):
        localizer(np.zeros((64, 64, 3), np.uint8), phrase)


def test_image_smaller_than_a_patch(localizer):
    with pytest.raises(ValueError, match=r'15x40 pixels, smaller than one patch .*16'):
        localizer(np.zeros((40, 15, 3), np.uint8), 'a cat')


def test_unknown_method():
    with pytest.raises(ValueError, match='region_tokens'):
        PhraseLocalizer(method='slic', model=None, pretrained=None)
