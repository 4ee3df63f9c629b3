"""The browser demo's Phrase tab in-process (the toy CLIP's region tokens): the handler returns
the heat map with the box and the box's coordinates; the box lies on the object the phrase
names; bad input gets its reason in the status line; the localizer is built on the first phrase
only; the tab's button and Enter are wired to the handler."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from denseclip.toy.world import generate_scene, scene_phrases

REPO = Path(__file__).resolve().parents[2]
TOY_EXAMPLE = REPO / 'demo' / 'examples' / 'toy_world.png'
SCENE_SEED = 10  # the scene of demo/examples/toy_world.png
BOX = re.compile(r'box \((\d+), (\d+), (\d+), (\d+)\).*score (-?[\d.]+)')


@pytest.fixture(scope='module')
def app():
    sys.path.insert(0, str(REPO / 'demo'))
    spec = importlib.util.spec_from_file_location('demo_app_phrase', REPO / 'demo' / 'app.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def handlers(app):
    args = app.parse_args([])  # the toy CLIP, offline
    localizer = app.LazyLocalizer(lambda: app.build_localizer(app.phrase_arguments(args)))
    return app.DemoHandlers(app.MaskNamer(app.build_segmenter(args)), app.SuperpixelMasks(),
                            localizer)


@pytest.fixture(scope='module')
def toy_state(handlers):
    state, *_ = handlers.load(str(TOY_EXAMPLE))
    return state


def iou(a, b) -> float:
    """IoU of two ``(x1, y1, x2, y2)`` boxes in inclusive pixel indices."""
    w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(w, 0) * max(h, 0)
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_phrase_box_lies_on_the_object(app, handlers, toy_state):
    scene = generate_scene(SCENE_SEED, 224)
    assert np.array_equal(toy_state['image'], scene.image)
    truth = {p.phrase: p.box for p in scene_phrases(scene)}
    phrase = 'the red circle on the grass'
    assert phrase in truth
    picture, text, status = handlers.phrase(toy_state, phrase)
    assert status.startswith('Phrase localised in'), status
    match = BOX.search(text)
    assert match and phrase in text, text
    box = tuple(int(v) for v in match.groups()[:4])
    # The true box is the tight box of the circle's pixels in the scene's label map.
    assert iou(box, truth[phrase]) > 0.5, (box, truth[phrase])
    zoom = app.display_scale(scene.image)
    assert picture.shape == (224 * zoom, 224 * zoom, 3) and picture.dtype == np.uint8
    # The box is drawn in green on the enlarged picture, along its top edge.
    x1, y1, x2, _ = (v * zoom for v in box)
    edge = picture[y1, x1 + 2:x2 - 2]
    assert (np.all(edge == (0, 255, 0), axis=-1)).mean() > 0.8


@pytest.mark.parametrize('phrase,message', [
    ('', 'phrase is empty'),
    (' '.join(['red'] * 80), 'context holds 77'),
])
def test_bad_phrase_is_refused_in_the_status(handlers, toy_state, phrase, message):
    picture, text, status = handlers.phrase(toy_state, phrase)
    assert picture is None and text == ''
    assert status.startswith('**Phrase:**') and message in status, status


def test_picture_smaller_than_a_patch_is_refused(handlers, tmp_path):
    Image.fromarray(np.full((10, 40, 3), 90, np.uint8)).save(tmp_path / 'tiny.png')
    state, *_ = handlers.load(str(tmp_path / 'tiny.png'))
    assert state['image'].shape == (10, 40, 3)
    picture, text, status = handlers.phrase(state, 'the red circle')
    assert picture is None and text == ''
    assert status.startswith('**Phrase:**') and 'smaller than one patch' in status, status


def test_no_picture_yet(app, handlers):
    assert handlers.phrase(app.empty_state(), 'the red circle') == (
        None, '', 'Upload a picture first.')


def test_localizer_is_built_on_the_first_phrase_and_kept(app):
    built = []

    class Stub:
        def __call__(self, image, phrase):
            return (image.shape, phrase)

    def factory():
        built.append(1)
        return Stub()

    lazy = app.LazyLocalizer(factory)
    assert built == []
    image = np.zeros((32, 32, 3), np.uint8)
    assert lazy(image, 'a') == ((32, 32, 3), 'a')
    assert lazy(image, 'b') == ((32, 32, 3), 'b')
    assert len(built) == 1


def test_segmentation_config_without_phrase_config_is_explained(app):
    args = app.parse_args(['--config', str(REPO / 'configs' / 'sclip' /
                                           'sclip_toy-vit-p16_toy.py')])
    handlers = app.DemoHandlers(None, None, app.LazyLocalizer(
        lambda: app.build_localizer(app.phrase_arguments(args))))
    state = dict(app.empty_state(), image=np.zeros((32, 32, 3), np.uint8))
    for _ in range(2):  # a failed build is not kept: the same reason each time
        picture, text, status = handlers.phrase(state, 'the red circle')
        assert picture is None and '--phrase-config' in status, status
    assert handlers.localizer.localizer is None


def test_method_is_the_segmentation_method_only(app):
    args = app.parse_args(['--method', 'maskclip'])
    assert app.phrase_arguments(args).method is None


def test_setup_wires_the_phrase_tab(app):
    page, _ = app.setup(app.parse_args([]))
    events = [f for f in page.fns.values() if getattr(f.fn, '__name__', '') == 'phrase']
    assert sorted(event for f in events for _, event in f.targets) == ['click', 'submit']
    for f in events:
        assert [type(c).__name__ for c in f.inputs] == ['State', 'Textbox']
        assert f.inputs[1].elem_id == 'phrase'
        assert [c.elem_id for c in f.outputs] == ['phrase-picture', 'phrase-result', 'status']
    localizer = events[0].fn.__self__.localizer
    assert isinstance(localizer, app.LazyLocalizer) and localizer.localizer is None  # lazy
    assert 'the red circle on the grass' in events[0].inputs[1].placeholder


def test_help_and_a_missing_phrase_config(app, capsys):
    with pytest.raises(SystemExit):
        app.parse_args(['--help'])
    out = capsys.readouterr().out
    assert 'type a phrase' in out and '--phrase-config' in out
    with pytest.raises(FileNotFoundError, match='--phrase-config'):
        app.setup(app.parse_args(['--phrase-config', 'missing.py']))
