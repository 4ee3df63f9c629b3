"""Shapes world: synthetic scenes with exact label maps and captions, for the offline toy CLIP.

A scene is a textured "stuff" background (``sky`` above a wavy horizon, one or two of
``grass``, ``water``, ``sand`` below it) with 1-4 flat-coloured "things" on top, each class a
colour and a shape of its own (``red circle``, ``pink ring``, ...). Every pixel belongs to
exactly one class of :data:`TOY_CLASSES`, so there is no background class and no ignore
label. The caption names
exactly the classes present in the label map: ``"a photo of a red circle and a black cross on
grass under the sky."``.

Everything is drawn from one ``numpy.random.Generator`` seeded by the caller, so a seed fixes
the image, the label map and the caption. A 224x224 scene takes a few milliseconds.
"""
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from skimage.draw import disk, polygon
from skimage.transform import resize

# Each thing has its own colour and its own shape, so colour alone names it: a 4-layer ViT
# trained for minutes learns colour and texture, not shape (measured: with 3 colours x 3 shapes,
# zero-shot shape accuracy stayed at chance after 800 steps). The shape still matters to the
# label map: rings have holes, stars and crosses thin arms.
THING_STYLES = {  # name: (shape, RGB)
    'red circle': ('circle', (220, 30, 40)),
    'yellow triangle': ('triangle', (250, 215, 30)),
    'purple square': ('square', (135, 50, 195)),
    'orange star': ('star', (250, 125, 15)),
    'pink ring': ('ring', (245, 115, 195)),
    'black cross': ('cross', (25, 25, 30)),
}
THINGS = tuple(THING_STYLES)
STUFF = ('sky', 'grass', 'water', 'sand')
TOY_CLASSES: Tuple[str, ...] = THINGS + STUFF
# Open-vocabulary split of the toy world: methods that train do so on the seen classes (unseen
# pixels ignored) and are evaluated on all ten (configs/_base_/datasets/toy_open_vocab.py).
# Two things and one ground stuff are held out.
TOY_UNSEEN_CLASSES: Tuple[str, ...] = ('purple square', 'black cross', 'sand')
TOY_SEEN_CLASSES: Tuple[str, ...] = tuple(c for c in TOY_CLASSES if c not in TOY_UNSEEN_CLASSES)
TOY_PALETTE: Tuple[Tuple[int, int, int], ...] = tuple(rgb for _, rgb in THING_STYLES.values()) + (
    (150, 200, 240), (60, 150, 50), (30, 90, 150), (220, 190, 130))  # sky, grass, water, sand
# Prompt templates the toy CLIP sees during training for single-class captions; dense methods
# evaluated on the toy world should use these (the toy text tower never saw ImageNet prompts).
# The generator's version: bump it with any change to what generate_scene draws (the pinned
# digest of tests/test_toy/test_world.py fails until both are updated). A split on disk records
# it, with a digest of its first scene made by the installed libraries (scene_digest), and is
# regenerated when either differs (denseclip.datasets.toy.ensure_toy_split).
WORLD_VERSION = 2
TOY_TEMPLATES = ('a photo of a {}.', 'a picture of a {}.', 'an image of a {}.', 'a {}.',
                 'a photo of the {}.', 'a rendering of a {}.')
# Angle of the first vertex of an upright shape (y grows downwards): apex up, sides level.
_UPRIGHT = {'circle': 0.0, 'triangle': -np.pi / 2, 'square': np.pi / 4, 'star': -np.pi / 2,
            'ring': 0.0, 'cross': 0.0}
_SCENE_TEMPLATES = ('a photo of {}.', 'a picture of {}.', 'an image of {}.', '{}.')


@dataclass
class SceneObject:
    """One drawn thing: class name and index, centre ``(y, x)``, radius, angle (radians) and
    the number of its pixels still visible in the label map."""
    name: str
    label: int
    center: Tuple[float, float]
    radius: float
    angle: float
    area: int = 0


@dataclass
class Scene:
    """``image`` (H, W, 3) uint8 RGB; ``label`` (H, W) uint8 indices into :data:`TOY_CLASSES`."""
    image: np.ndarray
    label: np.ndarray
    caption: str
    objects: List[SceneObject] = field(default_factory=list)

    @property
    def classes(self) -> List[str]:
        """Names of the classes present in the label map, in :data:`TOY_CLASSES` order."""
        return [TOY_CLASSES[i] for i in np.unique(self.label)]


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Value noise in [0, 1]: a random grid of period ``cell`` pixels, bilinearly upsampled."""
    gh, gw = int(np.ceil(h / cell)) + 1, int(np.ceil(w / cell)) + 1
    grid = rng.random((gh, gw))
    big = resize(grid, (int((gh - 1) * cell) + 1, int((gw - 1) * cell) + 1), order=1)
    return big[:h, :w].astype(np.float32)


def _texture(name: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) float32 RGB texture of one stuff class, before clipping to [0, 255]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    s = max(h, w) / 224  # texture periods scale with the scene

    def rgb(*c: int) -> np.ndarray:
        return np.array(c, np.float32)

    def noise(sigma: float) -> np.ndarray:  # (h, w, 1) grey pixel noise
        return sigma * rng.standard_normal((h, w, 1), dtype=np.float32)

    if name == 'sky':  # gradient, lighter towards the horizon, with soft clouds
        t = (yy / h)[..., None]
        img = (1 - t) * rgb(95, 160, 230) + t * rgb(175, 210, 245)
        clouds = np.clip((_smooth_noise(rng, h, w, 40 * s) - 0.55) * 3, 0, 1)[..., None]
        img = (1 - clouds) * img + clouds * rgb(245, 245, 250)
    elif name == 'grass':  # dark green with vertical blades and fine noise
        phase = 6 * _smooth_noise(rng, h, w, 24 * s)
        blades = np.sin(2 * np.pi * xx / (5 * s) + phase)[..., None]
        img = rgb(60, 140, 45) * (1 + 0.2 * blades) + noise(10)
    elif name == 'water':  # deep blue with bright horizontal wave crests
        phi = rng.uniform(0, 2 * np.pi)
        waves = np.sin(2 * np.pi * yy / (9 * s) + 2 * np.sin(2 * np.pi * xx / (45 * s) + phi))
        img = rgb(25, 85, 140) + np.clip(waves, 0.6, 1)[..., None] * 60 - 36 + noise(6)
    elif name == 'sand':  # beige with speckles and gentle dunes
        dunes = (_smooth_noise(rng, h, w, 56 * s) - 0.5)[..., None] * 30
        dots = (rng.random((h, w, 1), dtype=np.float32) < 0.04) * np.float32(-45)
        img = rgb(215, 190, 135) + dunes + dots + noise(9)
    else:
        raise KeyError(f'no texture for {name!r}; stuff classes: {STUFF}')
    return img


def _stuff_layout(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w) array of stuff names' indices into :data:`STUFF`: sky above a wavy horizon
    (3 scenes in 4), then one or two ground classes split by a random line."""
    yy, xx = np.mgrid[0:h, 0:w]
    ground = rng.choice([1, 2, 3], size=rng.integers(1, 3), replace=False)
    layout = np.full((h, w), ground[0], np.uint8)
    if len(ground) == 2:
        angle = rng.uniform(0, np.pi)
        cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
        side = (yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle) > 0
        layout[side] = ground[1]
    if rng.random() < 0.75:
        wave = rng.uniform(0, 0.04) * h * np.sin(2 * np.pi * xx / (rng.uniform(0.5, 2) * w)
                                                 + rng.uniform(0, 2 * np.pi))
        layout[yy < rng.uniform(0.25, 0.6) * h + wave] = 0
    return layout


def _shape_pixels(shape: str, center: Tuple[float, float], r: float, angle: float,
                  size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a filled shape of radius ``r`` (areas 2.5-3.1 r^2)."""
    cy, cx = center
    if shape in ('circle', 'ring'):
        if shape == 'circle':
            return disk(center, r, shape=size)
        rr, cc = disk(center, 1.15 * r, shape=size)
        keep = (rr - cy) ** 2 + (cc - cx) ** 2 > (0.6 * r) ** 2  # the hole shows the stuff
        return rr[keep], cc[keep]
    if shape == 'cross':  # 12 corners of a plus sign, arms 1.1 r long and 0.72 r wide
        R, a = 1.1 * r, 0.36 * r
        u = np.array([a, a, R, R, a, a, -a, -a, -R, -R, -a, -a])
        v = np.array([R, a, a, -a, -a, -R, -R, -a, -a, a, a, R])
        t, rad = np.arctan2(v, u) + angle, np.hypot(u, v)
    else:
        n, rad = {'triangle': (3, 1.45 * r), 'square': (4, 1.2 * r), 'star': (10, 1.3 * r)}[shape]
        t = angle + 2 * np.pi * np.arange(n) / n
        if shape == 'star':  # alternate outer and inner corners
            rad = np.where(np.arange(n) % 2 == 0, rad, 0.5 * rad)
    return polygon(cy + rad * np.sin(t), cx + rad * np.cos(t), shape=size)


def describe(classes: Sequence[str], rng: np.random.Generator) -> str:
    """A caption naming exactly ``classes`` (names from :data:`TOY_CLASSES`, in this order).

    One class: a :data:`TOY_TEMPLATES` prompt (``"a photo of a grass."``); several: things,
    then ground, then sky (``"a picture of a red circle on sand and water under the sky."``).
    """
    unknown = [c for c in classes if c not in TOY_CLASSES]
    if unknown or not classes:
        raise ValueError(f'describe: classes {list(classes)} must be non-empty names from '
                         f'TOY_CLASSES={TOY_CLASSES}')
    if len(classes) == 1:
        return TOY_TEMPLATES[rng.integers(len(TOY_TEMPLATES))].format(classes[0])

    def join(words: List[str]) -> str:
        return words[0] if len(words) == 1 else ', '.join(words[:-1]) + ' and ' + words[-1]

    things = [('an ' if c[0] in 'aeiou' else 'a ') + c for c in classes if c in THINGS]
    ground = [c for c in classes if c in STUFF[1:]]
    parts = [join(things)] if things else []
    if ground:
        parts.append(('on ' if things else '') + join(ground))
    if 'sky' in classes:
        parts.append('under the sky' if parts else 'the sky')
    return _SCENE_TEMPLATES[rng.integers(len(_SCENE_TEMPLATES))].format(' '.join(parts))


def generate_scene(seed: int, size: int = 224, num_objects: Optional[int] = None,
                   radius: Tuple[float, float] = (0.09, 0.2), tilt: float = 0.2) -> Scene:
    """Draw one scene, deterministically from ``seed``.

    Args:
        seed: seed of the ``numpy.random.Generator`` that makes every choice.
        size: side of the square image in pixels.
        num_objects: things to place (0-8); ``None`` draws 1-4. Placements that would cover
            more than 15% of an earlier thing (or be 15% covered) are retried, then dropped.
        radius: range of a thing's radius as a fraction of ``size``.
        tilt: largest rotation (radians) of a square or triangle away from upright.

    Returns:
        A :class:`Scene`: image (size, size, 3) uint8, label (size, size) uint8, caption and
        the things drawn, with their visible pixel counts.
    """
    if num_objects is not None and not 0 <= num_objects <= 8:
        raise ValueError(f'generate_scene: num_objects={num_objects}, expected 0-8 or None')
    rng = np.random.default_rng(seed)
    h = w = size
    stuff = _stuff_layout(rng, h, w)
    image = np.zeros((h, w, 3), np.float32)
    label = (stuff + len(THINGS)).astype(np.uint8)
    for s in np.unique(stuff):
        m = stuff == s
        image[m] = _texture(STUFF[s], rng, h, w)[m]
    owner = np.full((h, w), -1, np.int16)  # which thing covers each pixel
    objects: List[SceneObject] = []
    for _ in range(rng.integers(1, 5) if num_objects is None else num_objects):
        cls = int(rng.integers(len(THINGS)))
        for _attempt in range(20):
            r = rng.uniform(*radius) * size
            center = (rng.uniform(r, h - r), rng.uniform(r, w - r))
            shape, rgb = THING_STYLES[THINGS[cls]]
            angle = _UPRIGHT[shape] + rng.uniform(-tilt, tilt)
            rr, cc = _shape_pixels(shape, center, r, angle, (h, w))
            covered = owner[rr, cc]
            areas = np.bincount(covered[covered >= 0], minlength=len(objects))
            sizes = np.bincount(owner[owner >= 0], minlength=len(objects))
            if (covered >= 0).mean() <= 0.15 and np.all(areas <= 0.15 * np.maximum(sizes, 1)):
                break
        else:
            continue
        base = np.array(rgb) + rng.uniform(-15, 15, 3)
        shade = (rr - center[0]) / r * rng.uniform(-12, 12)  # a light gradient across the face
        image[rr, cc] = base + shade[:, None] + rng.normal(0, 4, (len(rr), 1))
        label[rr, cc] = cls
        owner[rr, cc] = len(objects)
        objects.append(SceneObject(THINGS[cls], cls, center, r, angle))
    for i, obj in enumerate(objects):
        obj.area = int((owner == i).sum())
    present = [TOY_CLASSES[i] for i in np.unique(label)]
    # Things in drawing order, then stuff: captions read like the picture was made.
    order = list(dict.fromkeys(o.name for o in objects)) + [c for c in present if c in STUFF]
    image = np.clip(image, 0, 255).astype(np.uint8)
    return Scene(image, label, describe(order, rng), objects)


def scene_seed(seed: int, index: int) -> int:
    """Seed of scene ``index`` of a split seeded by ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def scene_digest(seed: int, size: int = 224) -> str:
    """sha256 of ``generate_scene(seed, size)``'s image and label bytes: equal exactly when this
    code and the installed numpy / scikit-image / Pillow draw the same scene."""
    scene = generate_scene(seed, size)
    digest = hashlib.sha256(np.ascontiguousarray(scene.image).tobytes())
    digest.update(np.ascontiguousarray(scene.label).tobytes())
    return digest.hexdigest()


def write_split(root: str, num_images: int, seed: int = 0, size: int = 224,
                split: str = 'val') -> None:
    """Write a split in mmseg layout under ``root``.

    Files: ``img_dir/{split}/{i:05d}.png`` (RGB), ``ann_dir/{split}/{i:05d}.png`` (uint8
    indices into :data:`TOY_CLASSES`, no ignore label), ``classes.txt`` (one name a line) and
    ``captions_{split}.txt`` (``{i:05d}\\t{caption}`` a line). Scene ``i`` is
    ``generate_scene(scene_seed(seed, i), size)``.
    """
    img_dir, ann_dir = Path(root, 'img_dir', split), Path(root, 'ann_dir', split)
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    captions = []
    for i in range(num_images):
        scene = generate_scene(scene_seed(seed, i), size)
        Image.fromarray(scene.image).save(img_dir / f'{i:05d}.png')
        Image.fromarray(scene.label).save(ann_dir / f'{i:05d}.png')
        captions.append(f'{i:05d}\t{scene.caption}\n')
    Path(root, f'captions_{split}.txt').write_text(''.join(captions))
    Path(root, 'classes.txt').write_text('\n'.join(TOY_CLASSES) + '\n')


# Phrases with boxes for phrase localization (denseclip.datasets.grounding.ToyPhraseDataset).
# Derived from a scene after it is drawn, so the scenes (and their pinned digests) are unchanged.
PHRASES_VERSION = 1


@dataclass
class ScenePhrase:
    """A phrase naming one thing of a scene and the tight box ``(x1, y1, x2, y2)`` of its
    visible pixels (inclusive pixel indices)."""
    phrase: str
    box: Tuple[int, int, int, int]


def scene_phrases(scene: Scene) -> List[ScenePhrase]:
    """Phrases for the things whose class occurs once in ``scene``, two each:
    ``"the red circle"`` and ``"the red circle on the grass"`` (``"in the sky"`` when sky is
    the stuff most common in its box). Things drawn twice are skipped: a phrase naming the
    class would not single one out. Deterministic: no randomness is drawn.
    """
    counts: dict = {}
    for obj in scene.objects:
        counts[obj.name] = counts.get(obj.name, 0) + 1
    phrases = []
    for obj in scene.objects:
        if counts[obj.name] != 1 or obj.area == 0:
            continue
        ys, xs = np.nonzero(scene.label == obj.label)
        box = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
        window = scene.label[box[1]:box[3] + 1, box[0]:box[2] + 1]
        stuff = np.bincount(window[window >= len(THINGS)] - len(THINGS), minlength=len(STUFF))
        phrases.append(ScenePhrase(f'the {obj.name}', box))
        if stuff.any():
            where = STUFF[int(stuff.argmax())]
            relation = 'in the sky' if where == 'sky' else f'on the {where}'
            phrases.append(ScenePhrase(f'the {obj.name} {relation}', box))
    return phrases


def write_phrases(root: str, num_images: int, seed: int = 0, size: int = 224,
                  split: str = 'val') -> Path:
    """Write ``phrases_{split}.json`` next to a split made by :func:`write_split` with the same
    arguments: ``{"phrases_version", "world_version", "samples": [{"image": "00000.png",
    "phrase": ..., "bbox": [x1, y1, x2, y2]}, ...]}``, written to a temporary file and renamed.
    """
    samples = []
    for i in range(num_images):
        for p in scene_phrases(generate_scene(scene_seed(seed, i), size)):
            samples.append(dict(image=f'{i:05d}.png', phrase=p.phrase, bbox=list(p.box)))
    from denseclip.engine.checkpoint import atomic_write  # the engine imports the datasets

    text = json.dumps(dict(phrases_version=PHRASES_VERSION, world_version=WORLD_VERSION,
                           num_images=num_images, seed=seed, size=size, samples=samples))
    return atomic_write(Path(root, f'phrases_{split}.json'), lambda tmp: Path(tmp).write_text(text))
