"""The shapes world: determinism, labels that match the drawing, exact captions, mmseg split."""
import numpy as np
import pytest
from PIL import Image

from denseclip.toy import world
from denseclip.toy.world import (STUFF, THING_STYLES, THINGS, TOY_CLASSES, describe,
                                 generate_scene, scene_seed, write_split)

SEEDS = range(12)


def test_same_seed_same_scene_other_seed_other_scene():
    a, b, c = generate_scene(3), generate_scene(3), generate_scene(4)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label, b.label)
    assert a.caption == b.caption and a.objects == b.objects
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize('size', [224, 96, 301])
def test_shapes_and_types(size):
    scene = generate_scene(0, size)
    assert scene.image.shape == (size, size, 3) and scene.image.dtype == np.uint8
    assert scene.label.shape == (size, size) and scene.label.dtype == np.uint8
    assert scene.label.max() < len(TOY_CLASSES)


@pytest.mark.parametrize('seed', SEEDS)
def test_label_map_matches_drawing(seed):
    """Redraw every thing independently: its pixels not covered by a later thing carry its
    class, their count is its recorded area, its colour is its name's, and stuff fills the
    rest."""
    scene = generate_scene(seed)
    size = scene.label.shape
    assert 1 <= len(scene.objects) <= 4
    covered = np.zeros(size, bool)
    for obj in reversed(scene.objects):
        mask = np.zeros(size, bool)
        shape, rgb = THING_STYLES[obj.name]
        mask[world._shape_pixels(shape, obj.center, obj.radius, obj.angle, size)] = 1
        visible = mask & ~covered
        assert (scene.label[visible] == obj.label).all()
        assert visible.sum() == obj.area > 0.5 * mask.sum()
        colour = scene.image[visible].astype(float).mean(0)
        assert np.abs(colour - rgb).max() < 30
        covered |= mask
    assert (scene.label[~covered] >= len(THINGS)).all()


@pytest.mark.parametrize('seed', SEEDS)
def test_caption_names_exactly_the_classes_present(seed):
    scene = generate_scene(seed)
    present = set(scene.classes)
    for name in TOY_CLASSES:
        assert (name in scene.caption) == (name in present), (name, scene.caption)


def test_describe():
    rng = np.random.default_rng(0)
    assert describe(['grass'], rng).count('grass') == 1
    text = describe(['red circle', 'orange star', 'sand', 'water', 'sky'], rng)
    assert text.endswith('a red circle and an orange star on sand and water under the sky.')
    with pytest.raises(ValueError, match='TOY_CLASSES'):
        describe(['purple circle'], rng)
    with pytest.raises(ValueError, match='num_objects'):
        generate_scene(0, num_objects=9)


def test_write_split_layout(tmp_path):
    write_split(str(tmp_path), num_images=3, seed=5, size=64)
    imgs = sorted((tmp_path / 'img_dir' / 'val').iterdir())
    anns = sorted((tmp_path / 'ann_dir' / 'val').iterdir())
    assert [p.name for p in imgs] == [p.name for p in anns] == ['00000.png', '00001.png',
                                                              '00002.png']
    assert (tmp_path / 'classes.txt').read_text().splitlines() == list(TOY_CLASSES)
    captions = (tmp_path / 'captions_val.txt').read_text().splitlines()
    for i, (img, ann) in enumerate(zip(imgs, anns)):
        scene = generate_scene(scene_seed(5, i), 64)
        label = Image.open(ann)
        assert label.mode == 'L'
        np.testing.assert_array_equal(np.asarray(label), scene.label)
        np.testing.assert_array_equal(np.asarray(Image.open(img).convert('RGB')), scene.image)
        assert captions[i] == f'{i:05d}\t{scene.caption}'
    assert set(STUFF) <= set(TOY_CLASSES)


def test_dataset_generates_once_and_loads(tmp_path):
    from denseclip.datasets import ToyWorldDataset, ensure_toy_split
    from denseclip.registry import DATASETS

    root = tmp_path / 'toy'
    gen = dict(num_images=3, seed=1, size=64)
    ds = DATASETS.build(dict(type='ToyWorldDataset', data_root=str(root), generate=gen,
                             pipeline=[dict(type='LoadImageFromFile'),
                                        dict(type='mmseg.LoadAnnotations')]))
    assert isinstance(ds, ToyWorldDataset) and len(ds) == 3
    assert ds.metainfo['classes'] == TOY_CLASSES
    assert len(ds.metainfo['palette']) == len(TOY_CLASSES)
    sample = ds[1]
    scene = generate_scene(scene_seed(1, 1), 64)
    np.testing.assert_array_equal(sample['gt_seg_map'], scene.label)
    np.testing.assert_array_equal(sample['img'][..., ::-1], scene.image)  # BGR as mmcv loads
    stamp = (root / 'toy_world.json').stat().st_mtime_ns
    ensure_toy_split(str(root), **gen)  # idempotent: nothing rewritten
    assert (root / 'toy_world.json').stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name != 'toy']  # no temp dirs left
    with pytest.raises(ValueError, match='num_images'):
        ensure_toy_split(str(root), num_images=4, seed=1, size=64)
    with pytest.raises(ValueError, match='data_root'):
        ToyWorldDataset(generate=gen)



# Digests of generate_scene's image and label bytes, as this code and the libraries install.sh
# resolves draw them. A change to the drawing must bump world.WORLD_VERSION and these together
# (and rerun the toy tables: python tools/toy_table.py).
PINNED = {(0, 0, 224): '9b220cc1692c25a9e95b36e5dae09512f39749266ac91e3d7be4bd86ec85614d',
          (0, 57, 160): 'ae6649c85840acd4da607d7c1f0bab55a4cc1ebf764770f82039a4f47a5a3a4a',
          (1, 3, 224): 'e382068861ac3e202b4a15da35e8e6b138b246f51b51c68adc83956a90fdc53f'}


def test_generated_scenes_are_pinned():
    assert world.WORLD_VERSION == 2
    for (seed, index, size), digest in PINNED.items():
        assert world.scene_digest(world.scene_seed(seed, index), size) == digest, (seed, index)


def test_a_stale_split_is_regenerated_never_reused(tmp_path, caplog):
    import json

    from denseclip.datasets.toy import ensure_toy_split

    root = tmp_path / 'toy'
    ensure_toy_split(str(root), num_images=2, seed=0, size=64)
    stamp = json.loads((root / 'toy_world.json').read_text())
    assert stamp['world_version'] == world.WORLD_VERSION
    assert stamp['first_scene'] == world.scene_digest(world.scene_seed(0, 0), 64)
    fresh = np.asarray(Image.open(root / 'img_dir' / 'val' / '00001.png'))
    # a split an older world wrote: other pictures, a stamp without the version
    Image.fromarray(np.zeros_like(fresh)).save(root / 'img_dir' / 'val' / '00001.png')
    (root / 'toy_world.json').write_text(json.dumps(
        dict(num_images=2, seed=0, size=64, split='val')))
    with caplog.at_level('WARNING'):
        ensure_toy_split(str(root), num_images=2, seed=0, size=64)
    assert 'made by another generator' in caplog.text and 'regenerating' in caplog.text
    assert np.array_equal(np.asarray(Image.open(root / 'img_dir' / 'val' / '00001.png')), fresh)
    assert json.loads((root / 'toy_world.json').read_text()) == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ['toy']  # nothing stale left beside
    caplog.clear()
    with caplog.at_level('WARNING'):
        ensure_toy_split(str(root), num_images=2, seed=0, size=64)  # current: reused quietly
    assert not caplog.text
    with pytest.raises(ValueError, match='made with'):
        ensure_toy_split(str(root), num_images=3, seed=0, size=64)
