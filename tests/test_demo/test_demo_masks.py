"""The browser demo's mask providers: the random small SAM path and the superpixel stand-in."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'demo'))
from masks import SamMasks, SuperpixelMasks, build_small_sam, load_sam  # noqa: E402

from denseclip.toy import generate_scene  # noqa: E402


@pytest.fixture(scope='module')
def scene():
    return generate_scene(15, 224)


def inner_point(label: np.ndarray, cls: int) -> tuple[int, int]:
    """(x, y) of the pixel of class ``cls`` farthest from the class boundary."""
    from scipy.ndimage import distance_transform_edt
    dist = distance_transform_edt(label == cls)
    y, x = np.unravel_index(np.argmax(dist), dist.shape)
    return int(x), int(y)


def test_sam_embeds_each_image_once(scene):
    sam = build_small_sam()
    calls = []
    sam.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    masks = SamMasks(sam, 'random')
    masks.prepare(scene.image)
    first = masks.from_prompts(scene.image, [(100.0, 50.0, 1)], None)
    both = masks.from_prompts(scene.image, [(100.0, 50.0, 1), (40.0, 110.0, 0)],
                              (20.0, 20.0, 150.0, 120.0))
    assert first.shape == both.shape == (224, 224) and first.dtype == bool
    assert len(calls) == 1  # the clicks reused the embedding of prepare()
    other = generate_scene(3, 224).image
    masks.from_prompts(other, [(10.0, 10.0, 1)], None)
    masks.from_prompts(scene.image, [(100.0, 50.0, 1)], None)  # still cached
    assert len(calls) == 2


def test_superpixel_click_selects_the_object(scene):
    masks = SuperpixelMasks()
    for obj in scene.objects:
        x, y = inner_point(scene.label, obj.label)
        mask = masks.from_prompts(scene.image, [(x, y, 1)], None)
        truth = scene.label == obj.label
        assert (mask & truth).sum() / mask.sum() > 0.95, obj.name  # the segment is the object
        assert (mask & truth).sum() / truth.sum() > 0.5, obj.name
        removed = masks.from_prompts(scene.image, [(x, y, 1), (x, y, 0)], None)
        assert not removed.any()


def test_superpixel_box_and_everything(scene):
    masks = SuperpixelMasks()
    box_mask = masks.from_prompts(scene.image, [], (0.0, 0.0, 223.0, 111.0))
    assert box_mask.any() and not box_mask[112:].any()
    parts = masks.everything(scene.image)
    assert np.array_equal(np.sum(parts, axis=0), np.ones((224, 224)))  # a partition


def test_load_sam_errors(tmp_path):
    with pytest.raises(KeyError, match=r"--sam-type 'vit_s'; known: \['default', 'vit_b'"):
        load_sam('vit_s', tmp_path / 'sam.pth')
    with pytest.raises(FileNotFoundError, match='--sam-checkpoint .*sam.pth: no such file'):
        load_sam('vit_b', tmp_path / 'sam.pth')
