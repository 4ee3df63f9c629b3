"""``demo/app.py`` in a real browser: Debian's headless Chromium driven by Playwright.

The app runs as a subprocess on a free loopback port with its offline defaults: the bundled toy
CLIP and the deterministic superpixel mask provider (a random-weight SAM gives noise masks, so
no name could be asserted; its code path is tested in ``test_demo_masks.py``). The test uploads
a toy-world picture, clicks inside an object and expects the object's class as the top name;
in the Phrase tab it types a phrase and expects its box (an empty one is refused).
"""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import distance_transform_edt

from denseclip.toy import TOY_CLASSES, generate_scene

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = '/usr/bin/chromium'
# Chromium flags for a closed network, as root (machine notes); Playwright adds --headless and
# a fresh --user-data-dir itself.
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update',
                 '--disable-sync']
START_TIMEOUT = 180  # s: imports and model loading on 2 busy cores
STEP_TIMEOUT = 60_000  # ms: any one page update
SCENE_SEED = 10  # the scene of demo/examples/toy_world.png, here written by the test itself
MAX_UPLOAD_KB = 150  # the toy scene's PNG is ~60 KB


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """The app's URL; the process is killed at the end whatever happens."""
    port = free_port()
    log = open(tmp_path / 'server.log', 'w')
    env = dict(os.environ, GRADIO_TEMP_DIR=str(tmp_path / 'gradio'))
    args = ['--port', str(port), '--max-file-size', f'{MAX_UPLOAD_KB}kb']
    proc = subprocess.Popen([sys.executable, str(REPO / 'demo' / 'app.py'), *args],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    url = f'http://127.0.0.1:{port}/'
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f'app exited with {proc.returncode}:\n' + server_log(tmp_path))
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f'app not serving after {START_TIMEOUT} s:\n' +
                                server_log(tmp_path))
                time.sleep(0.5)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=30)
        log.close()


def server_log(tmp_path: Path) -> str:
    return (tmp_path / 'server.log').read_text()[-4000:]


def inner_point(label: np.ndarray, cls: int) -> tuple[int, int]:
    """(x, y) of the pixel of class ``cls`` farthest from its boundary."""
    dist = distance_transform_edt(label == cls)
    y, x = np.unravel_index(np.argmax(dist), dist.shape)
    return int(x), int(y)


def test_click_names_the_object(server, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f'{CHROMIUM} is missing: run `bash install.sh` (installs Debian chromium)')
    from playwright.sync_api import sync_playwright

    scene = generate_scene(SCENE_SEED, 224)
    picture = tmp_path / 'scene.png'
    Image.fromarray(scene.image).save(picture)
    (tmp_path / 'notes.txt').write_text('not a picture')
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / 'big.png')  # ~480 KB: over the upload limit
    # The largest thing, and the largest one of another class.
    obj = max(scene.objects, key=lambda o: o.area)
    other = max((o for o in scene.objects if o.name != obj.name), key=lambda o: o.area)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={'width': 1300, 'height': 1000})
            page.set_default_timeout(STEP_TIMEOUT)
            page.goto(server)
            banner = page.locator('#banner').inner_text()
            assert 'toy CLIP' in banner and 'NOT a real CLIP' in banner
            assert 'superpixels' in banner and 'not SAM' in banner

            upload = page.locator('#upload input[type=file]')
            upload.set_input_files(str(tmp_path / 'big.png'))
            page.get_by_text('exceed the maximum allowed size').wait_for()
            page.locator('.toast-close').first.click()  # dismiss gradio's error toast
            upload.set_input_files(str(tmp_path / 'notes.txt'))
            page.locator('#status', has_text='Not an image').wait_for()
            assert 'notes.txt' in page.locator('#status').inner_text()
            page.locator('#upload button[aria-label="Clear"]').click()

            upload.set_input_files(str(picture))
            page.locator('#status', has_text='image embeddings computed').wait_for()
            canvas = page.locator('#canvas img')
            canvas.wait_for()
            box = canvas.bounding_box()
            names = page.locator('#mask-names [data-testid="label-output-value"]')

            def click(x: float, y: float, wait_for: str) -> float:
                """Click image pixel (x, y); seconds until the status shows ``wait_for``."""
                start = time.perf_counter()
                canvas.click(position={'x': (min(max(x, 0), 223) + 0.5) * box['width'] / 224,
                                       'y': (min(max(y, 0), 223) + 0.5) * box['height'] / 224})
                page.locator('#status', has_text=wait_for).wait_for()
                return time.perf_counter() - start

            x, y = inner_point(scene.label, obj.label)
            times = [click(x + dx, y, f'from {n} point')  # three clicks inside the object
                     for n, dx in enumerate((0, 2, -2), start=1)]
            assert names.inner_text() == obj.name, server_log(tmp_path)
            page.screenshot(path=str(tmp_path / 'click.png'), full_page=True)
            print(f'{obj.name} at ({x}, {y}); click round trips in the browser: '
                  f'{", ".join(f"{t:.3f} s" for t in times)}')

            page.get_by_role('button', name='Clear prompts').click()
            page.locator('#status', has_text='Prompts cleared').wait_for()
            x, y = inner_point(scene.label, other.label)
            click(x, y, 'from 1 point')
            assert names.inner_text() == other.name, server_log(tmp_path)
            page.get_by_label('negative point').check()
            click(x, y, 'Empty mask')  # the negative point removes the segment again

            # A box around the first object (two clicks) instead of points.
            page.get_by_role('button', name='Clear prompts').click()
            page.locator('#status', has_text='Prompts cleared').wait_for()
            page.get_by_label('box (two clicks)').check()
            (cy, cx), r = obj.center, 1.25 * obj.radius
            click(cx - r, cy - r, 'opposite corner')
            click(cx + r, cy + r, 'from 0 points and a box')
            assert names.inner_text() == obj.name, server_log(tmp_path)

            page.get_by_role('tab', name='Semantic').click()
            page.locator('#run-semantic').click()
            page.locator('#status', has_text='Segmented in').wait_for()
            top_area = page.locator('#areas [data-testid="label-output-value"]').inner_text()
            assert top_area in TOY_CLASSES
            page.get_by_role('tab', name='Segment everything').click()
            page.locator('#run-everything').click()
            page.locator('#status', has_text='masks named in').wait_for()
            page.screenshot(path=str(tmp_path / 'everything.png'), full_page=True)

            # Phrase tab: an empty phrase is refused; Enter in the box localises a phrase.
            page.get_by_role('tab', name='Phrase').click()
            page.locator('#run-phrase').click()
            page.locator('#status', has_text='phrase is empty').wait_for()
            start = time.perf_counter()
            page.locator('#phrase textarea').fill('the red circle on the grass')
            page.locator('#phrase textarea').press('Enter')
            page.locator('#status', has_text='Phrase localised in').wait_for()
            result = page.locator('#phrase-result').inner_text()
            assert 'the red circle on the grass' in result and 'box (' in result, result
            page.locator('#phrase-picture img').wait_for()
            print(f'phrase round trip in the browser (first, builds the localizer): '
                  f'{time.perf_counter() - start:.3f} s')
        finally:
            browser.close()
    assert (tmp_path / 'click.png').stat().st_size > 10_000
