"""Browser demo: click on a picture, get a mask, and CLIP names it; or type a phrase, see where.

    python demo/app.py                              # toy CLIP + superpixels, offline
    python demo/app.py --model ViT-B-16 --pretrained openai \\
        --sam-checkpoint sam_vit_b_01ec64.pth --sam-type vit_b --port 7860

Upload a picture (or pick an example) and type a vocabulary (classes split by ``,``, synonyms by
``;``). In the "Click" tab, each click adds a positive or negative point, or two clicks draw a
box; the mask provider turns the prompts into a mask and :func:`name_mask` names it: the dense
CLIP features of the chosen method are averaged inside the mask and compared with the
vocabulary, top 3 shown. "Segment everything" names every mask of the provider; "Semantic"
shows the full ``OpenVocabSegmenter`` result.

The "Phrase" tab localises a phrase ("the red circle on the grass") with
:class:`denseclip.PhraseLocalizer` (Adapting CLIP for phrase localization): the heat map
blended on the picture, the box in green, and the box's pixel coordinates and score below.
It uses the same CLIP as the other tabs: region tokens for a ViT, the dilated ResNet for an
``RN*`` model, the toy CLIP's region tokens by default (``--method`` is the segmentation
method only). With ``--config`` (a segmentation config) give the phrase model its own
``--phrase-config`` (a ``configs/grounding/`` file). The localizer is built on the first
phrase, then kept. An empty phrase, one longer than the text context, or a picture smaller
than one patch is refused with the reason in the status line.

Per image, the CLIP dense features and the mask provider's image work (SAM embedding,
superpixels) are computed once, on upload, and cached by the image's hash: a click then costs
only SAM's prompt decoder (or a segment lookup) and a masked average.

Masks (``--masks``): ``sam`` with ``--sam-checkpoint`` is SAM; ``sam`` without a checkpoint is
a randomly initialised small SAM whose masks are noise (it only exercises the code path);
``superpixel`` (the default without a checkpoint) selects Felzenszwalb segments, a
deterministic stand-in that works offline. The page says which is running.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # demo_utils, masks
os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')  # no calls home from a demo

import gradio as gr  # noqa: E402

import denseclip  # noqa: E402,F401  (installs the mmcv shim, registers modules)
from demo_utils import (EXAMPLES, TOY_EXAMPLE, TOY_VOCABULARY, add_model_arguments,  # noqa: E402
                        build_localizer, build_segmenter, check_model_arguments, is_toy,
                        parse_vocabulary)
from denseclip.apis import OpenVocabSegmenter, PhraseLocalizer, load_image  # noqa: E402
from denseclip.apis.mask_naming import name_mask  # noqa: E402
from denseclip.models.segmentors import CLIP_MEAN, CLIP_STD  # noqa: E402
from denseclip.models.text import TextClassifier, Vocabulary  # noqa: E402
from masks import (LRUCache, SamMasks, SuperpixelMasks, build_small_sam, image_key,  # noqa: E402
                   load_sam)

logger = logging.getLogger('app')

MODES = ('positive point', 'negative point', 'box (two clicks)')
MASK_COLOUR = np.array([30, 144, 255])
DISPLAY = 512  # pictures smaller than this (long side) are shown enlarged, pixels kept sharp
# Uploads of more pixels are downscaled to this many on decoding (aspect kept): a small file can
# hold a huge picture (a 6000 x 6000 PNG of one colour is 125 KB), whose masks and features
# would take the server's memory and every other user's turn.
MAX_PIXELS = 2048 * 2048


def display_scale(image: np.ndarray) -> int:
    """Integer zoom of the pictures shown for ``image``; clicks are divided by it."""
    return max(1, DISPLAY // max(image.shape[:2]))


def enlarge(picture: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(picture, scale, axis=0), scale, axis=1) if scale > 1 else picture


class MaskNamer:
    """The CLIP side: dense features once per image, a text classifier per vocabulary.

    Features come from the segmenter's own backbone (so the "Semantic" tab and the naming use
    one model), on the whole image resized to the segmenter's short side with each side
    rounded to a multiple of the patch size. Deviation: no sliding windows, unlike
    ``OpenVocabSegmenter``: one forward pass per image keeps the first click fast.
    """

    def __init__(self, segmenter: OpenVocabSegmenter) -> None:
        self.segmenter = segmenter
        self.cache = LRUCache(8)
        self.lock = threading.Lock()  # the segmentor holds one vocabulary at a time

    def features(self, image: np.ndarray) -> torch.Tensor:
        """(E, h, w) dense features of an (H, W, 3) uint8 RGB image, cached by its hash."""
        key = image_key(image)
        feats = self.cache.get(key)
        if feats is not None:
            return feats
        backbone = self.segmenter.segmentor.backbone
        stride = backbone.output_stride
        H, W = image.shape[:2]
        short = self.segmenter.short_side or min(H, W)
        scale = min(2048 / max(H, W), short / min(H, W))
        size = [max(stride, round(s * scale / stride) * stride) for s in (H, W)]
        x = torch.from_numpy(image).permute(2, 0, 1).float()[None]  # (1, 3, H, W)
        x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)  # (1, 3, H', W')
        mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        x = ((x - mean) / std).to(self.segmenter.device)
        with self.lock, torch.inference_mode():
            feats = backbone.encode_dense(x)[0].float()  # (E, h, w)
        self.cache.put(key, feats)
        return feats

    def classifier(self, vocabulary: Vocabulary) -> TextClassifier:
        with self.lock:
            self.segmenter.segmentor.set_vocabulary(vocabulary)
            return self.segmenter.segmentor.classifier

    def name(self, image: np.ndarray, mask: np.ndarray, vocabulary: Vocabulary,
             top_k: int = 3) -> list[tuple[str, float]]:
        """``[(class name, probability), ...]`` of ``mask`` (H, W) bool, best first."""
        clf = self.classifier(vocabulary)
        feats = self.features(image)
        top = name_mask(feats, torch.from_numpy(mask).to(feats.device), clf.embeddings,
                        clf.query_to_class, self.segmenter.segmentor.logit_scale, top_k)
        return [(clf.class_names[k], p) for k, p in top]

    def semantic(self, image: np.ndarray, vocabulary: Vocabulary):
        with self.lock:
            return self.segmenter(image, vocabulary)


class LazyLocalizer:
    """The phrase localizer, built by ``factory`` on the first phrase and then kept (a demo
    that is only clicked never loads it). A failed build is not kept: the next phrase retries
    and shows the error again."""

    def __init__(self, factory) -> None:
        self.factory = factory
        self.localizer: PhraseLocalizer | None = None
        self.lock = threading.Lock()

    def __call__(self, image: np.ndarray, phrase: str):
        with self.lock:
            if self.localizer is None:
                start = time.perf_counter()
                self.localizer = self.factory()
                logger.info('phrase localizer built in %.2f s', time.perf_counter() - start)
            return self.localizer(image, phrase)


def phrase_arguments(args: argparse.Namespace) -> argparse.Namespace:
    """The options :func:`build_localizer` reads, from the app's: the same CLIP; ``--method``
    (the segmentation method) dropped; ``--phrase-config`` in place of ``--config``."""
    if args.config is not None and args.phrase_config is None:
        raise ValueError('--config sets the segmentation model only; give the phrase model with '
                         '--phrase-config (a configs/grounding/ file)')
    return argparse.Namespace(method=None, config=args.phrase_config, model=args.model,
                              pretrained=args.pretrained, device=args.device)


def draw_prompts(image: np.ndarray, mask: np.ndarray | None, points: list, box, corner
                 ) -> np.ndarray:
    """The enlarged image with the mask tinted and outlined, points (green +, red -), the box
    and a pending box corner; prompts are in the image's own pixel coordinates."""
    zoom = display_scale(image)
    out = image.copy()
    if mask is not None and mask.any():
        out[mask] = (0.45 * out[mask] + 0.55 * MASK_COLOUR).astype(np.uint8)
    out = enlarge(out, zoom)
    if mask is not None and mask.any():
        contours, _ = cv2.findContours(enlarge(mask.astype(np.uint8), zoom),
                                       cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
    radius = max(4, round(max(out.shape[:2]) / 80))

    def at(x: float, y: float) -> tuple[int, int]:
        return int((x + 0.5) * zoom), int((y + 0.5) * zoom)

    for x, y, lab in points:
        colour = (40, 200, 40) if lab == 1 else (220, 40, 40)
        cv2.circle(out, at(x, y), radius, colour, -1)
        cv2.circle(out, at(x, y), radius, (255, 255, 255), 1)
    if box is not None:
        cv2.rectangle(out, at(*box[:2]), at(*box[2:]), (255, 220, 0), 2)
    if corner is not None:
        cv2.drawMarker(out, at(*corner), (255, 220, 0), cv2.MARKER_CROSS, 2 * radius, 2)
    return out


def draw_named_masks(image: np.ndarray, masks: list[np.ndarray], names: list[str]
                     ) -> np.ndarray:
    """Every mask in its own colour, its name at its centre if it covers 1 % of the image
    (enlarged as the click canvas)."""
    rng = np.random.default_rng(0)
    out = image.astype(np.float32)
    for mask in masks:
        out[mask] = 0.4 * out[mask] + 0.6 * rng.integers(40, 256, 3)
    zoom = display_scale(image)
    out = enlarge(out.astype(np.uint8), zoom)
    scale = max(0.4, max(out.shape[:2]) / 1000)
    for mask, name in zip(masks, names, strict=True):
        if mask.sum() < 0.01 * mask.size:
            continue
        ys, xs = np.nonzero(mask)
        i = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)  # a pixel of the mask
        (tw, th), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        org = (int(np.clip(xs[i] * zoom - tw // 2, 0, out.shape[1] - tw)),
               int(ys[i] * zoom + th // 2))
        cv2.putText(out, name, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, name, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return out


def empty_state() -> dict:
    return dict(image=None, name='', points=[], box=None, corner=None)


class DemoHandlers:
    """The event handlers; each returns values in the order of its event's ``outputs``."""

    def __init__(self, namer: MaskNamer, masks: SamMasks | SuperpixelMasks,
                 localizer: LazyLocalizer | None = None) -> None:
        self.namer = namer
        self.masks = masks
        self.localizer = localizer

    def load(self, path: str | None):
        """Upload or example -> (state, canvas, status, names)."""
        state = empty_state()
        if path is None:
            return state, None, 'Upload a picture or pick an example.', None
        name = Path(path).name
        try:
            image = load_image(path, max_pixels=MAX_PIXELS)
            with Image.open(path) as header:  # the stored size, read from the header only
                stored = header.size
        except (OSError, ValueError, TypeError) as err:
            logger.info('rejected upload %s: %s', name, err)
            reason = str(err).replace(str(path), name)
            return (state, None, f'**Not an image:** `{name}` could not be read as a picture '
                    f'({reason}). Upload a PNG, JPEG, BMP, TIFF or WebP file.', None)
        start = time.perf_counter()
        self.masks.prepare(image)
        self.namer.features(image)
        seconds = time.perf_counter() - start
        logger.info('image %s %s: embeddings in %.3f s', name, image.shape, seconds)
        state.update(image=image, name=name)
        canvas = enlarge(image, display_scale(image))
        size = f'{image.shape[1]}x{image.shape[0]}'
        if stored[0] * stored[1] > MAX_PIXELS:
            size = (f'{stored[0]}x{stored[1]}, downscaled to {size}: at most '
                    f'{MAX_PIXELS / 1e6:.1f} megapixels')
        return (state, canvas, f'`{name}` ({size}): image embeddings computed in '
                f'{seconds:.2f} s. Click on the picture.', None)

    def click(self, state: dict, mode: str, vocabulary_text: str, evt: gr.SelectData):
        """A click on the canvas -> (state, canvas, names, status)."""
        image = state['image']
        if image is None:
            return state, None, None, 'Upload a picture first.'
        start = time.perf_counter()
        zoom = display_scale(image)
        H, W = image.shape[:2]
        x = min(float(evt.index[0]) // zoom, W - 1)  # enlarged-canvas pixels -> image pixels
        y = min(float(evt.index[1]) // zoom, H - 1)
        if mode == MODES[2]:
            if state['corner'] is None:
                state.update(corner=(x, y), box=None)
                canvas = draw_prompts(image, None, state['points'], None, state['corner'])
                return state, canvas, gr.skip(), 'Box: click the opposite corner.'
            (x0, y0), state['corner'] = state['corner'], None
            state['box'] = (min(x0, x), min(y0, y), max(x0, x), max(y0, y))
        else:
            state['points'].append((x, y, 1 if mode == MODES[0] else 0))
        try:
            vocabulary = parse_vocabulary(vocabulary_text)
        except ValueError as err:
            return state, gr.skip(), None, f'**Vocabulary:** {err}'
        mask = self.masks.from_prompts(image, state['points'], state['box'])
        mask_ms = 1000 * (time.perf_counter() - start)
        if not mask.any():
            canvas = draw_prompts(image, mask, state['points'], state['box'], None)
            return state, canvas, None, 'Empty mask: add a positive point.'
        names = self.namer.name(image, mask, vocabulary)
        total_ms = 1000 * (time.perf_counter() - start)
        logger.info('click (%d, %d): mask %.1f ms, total %.1f ms, top %s', x, y, mask_ms,
                    total_ms, names[0])
        canvas = draw_prompts(image, mask, state['points'], state['box'], None)
        n = len(state['points'])
        prompts = f'{n} point{"s" if n != 1 else ""}' + (' and a box' if state['box'] else '')
        status = (f'Mask of {int(mask.sum())} px from {prompts} named in {total_ms:.0f} ms '
                  f'(mask {mask_ms:.0f} ms, CLIP pooling {total_ms - mask_ms:.0f} ms).')
        return state, canvas, dict(names), status

    def clear(self, state: dict):
        """Forget the prompts -> (state, canvas, names, status)."""
        state.update(points=[], box=None, corner=None)
        image = state['image']
        canvas = None if image is None else enlarge(image, display_scale(image))
        return state, canvas, None, 'Prompts cleared.'

    @staticmethod
    def _picture_and_vocabulary(state: dict, vocabulary_text: str):
        """(image, vocabulary, None), or (None, None, the status to show) for the buttons."""
        if state['image'] is None:
            return None, None, 'Upload a picture first.'
        try:
            return state['image'], parse_vocabulary(vocabulary_text), None
        except ValueError as err:
            return None, None, f'**Vocabulary:** {err}'

    def everything(self, state: dict, vocabulary_text: str):
        """Name every mask -> (picture, table rows, status)."""
        image, vocabulary, error = self._picture_and_vocabulary(state, vocabulary_text)
        if error:
            return None, None, error
        start = time.perf_counter()
        masks = self.masks.everything(image)
        if not masks:
            return (enlarge(image, display_scale(image)), None,
                    'The mask provider found no masks (a random-weight SAM finds none that pass '
                    'its quality filters; use --masks superpixel or a SAM checkpoint).')
        named = [self.namer.name(image, m, vocabulary, top_k=2) for m in masks]
        rows = [[i + 1, round(100 * m.mean(), 2), n[0][0], round(n[0][1], 3),
                 n[1][0] if len(n) > 1 else '']
                for i, (m, n) in enumerate(zip(masks, named, strict=True))]
        picture = draw_named_masks(image, masks, [n[0][0] for n in named])
        seconds = time.perf_counter() - start
        return picture, rows, f'{len(masks)} masks named in {seconds:.2f} s.'

    def semantic(self, state: dict, vocabulary_text: str):
        """Full OpenVocabSegmenter result -> (overlay, areas, status)."""
        image, vocabulary, error = self._picture_and_vocabulary(state, vocabulary_text)
        if error:
            return None, None, error
        start = time.perf_counter()
        result = self.namer.semantic(image, vocabulary)
        seconds = time.perf_counter() - start
        overlay = enlarge(result.overlay(), display_scale(image))
        return overlay, result.areas(), f'Segmented in {seconds:.2f} s.'

    def phrase(self, state: dict, phrase: str):
        """Localise a phrase -> (overlay: heat map and box, result text, status)."""
        image = state['image']
        if image is None:
            return None, '', 'Upload a picture first.'
        if self.localizer is None:
            return None, '', '**Phrase:** phrase mode is not set up in this app.'
        start = time.perf_counter()
        try:
            result = self.localizer(image, phrase)
        except (OSError, ValueError, TypeError, KeyError) as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            logger.info('phrase %r refused: %s', phrase, message)
            return None, '', f'**Phrase:** {message}'
        seconds = time.perf_counter() - start
        x1, y1, x2, y2 = (float(c) for c in result.box)
        text = (f'"{result.phrase}": box ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}) '
                f'(x1, y1, x2, y2 in image pixels), score {result.score:.3f}')
        logger.info('phrase %r: box (%.0f, %.0f, %.0f, %.0f), score %.3f, %.2f s', phrase,
                    x1, y1, x2, y2, result.score, seconds)
        overlay = enlarge(result.overlay(), display_scale(image))
        return overlay, text, f'Phrase localised in {seconds:.2f} s.'


def build_app(handlers: DemoHandlers, banner: str, vocabulary: str,
              examples: list[tuple[str, str]], phrase_hint: str = 'the man in a red shirt'
              ) -> gr.Blocks:
    """The page: inputs on the left; Click / Segment everything / Semantic / Phrase tabs on the
    right."""
    with gr.Blocks(title='denseclip demo') as app:
        gr.Markdown(f'## denseclip: click on a picture, CLIP names the mask\n{banner}',
                    elem_id='banner')
        state = gr.State(empty_state())
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label='Picture (upload)', type='filepath', elem_id='upload')
                if examples:
                    gr.Examples([[path] for path, _ in examples], inputs=[upload],
                                example_labels=[label for _, label in examples],
                                label='Examples')
                vocab = gr.Textbox(value=vocabulary, lines=3, elem_id='vocabulary',
                                   label='Vocabulary: classes split by "," (synonyms by ";")')
                status = gr.Markdown('Upload a picture or pick an example.', elem_id='status')
            with gr.Column(scale=2):
                with gr.Tab('Click'):
                    mode = gr.Radio(list(MODES), value=MODES[0], label='A click adds',
                                    elem_id='mode')
                    canvas = gr.Image(label='Click on the picture', interactive=False,
                                      type='numpy', format='png', elem_id='canvas')
                    names = gr.Label(label='Names of the mask (top 3)', num_top_classes=3,
                                     elem_id='mask-names')
                    clear = gr.Button('Clear prompts')
                with gr.Tab('Segment everything'):
                    run_all = gr.Button('Segment everything', elem_id='run-everything')
                    all_picture = gr.Image(label='Named masks', interactive=False, format='png')
                    table = gr.Dataframe(headers=['mask', 'area %', 'name', 'score', 'second'],
                                         label='Masks', interactive=False)
                with gr.Tab('Semantic'):
                    run_sem = gr.Button('Segment (OpenVocabSegmenter)', elem_id='run-semantic')
                    sem_picture = gr.Image(label='Overlay', interactive=False, format='png')
                    areas = gr.Label(label='Class areas', elem_id='areas')
                with gr.Tab('Phrase'):
                    phrase = gr.Textbox(label='Phrase (Enter or the button localises it)',
                                        placeholder=f'e.g. {phrase_hint}', elem_id='phrase')
                    run_phrase = gr.Button('Localise the phrase', elem_id='run-phrase')
                    phrase_picture = gr.Image(label='Heat map and box', interactive=False,
                                              format='png', elem_id='phrase-picture')
                    phrase_box = gr.Markdown('', elem_id='phrase-result')
        upload.change(handlers.load, [upload], [state, canvas, status, names])
        canvas.select(handlers.click, [state, mode, vocab], [state, canvas, names, status])
        clear.click(handlers.clear, [state], [state, canvas, names, status])
        run_all.click(handlers.everything, [state, vocab], [all_picture, table, status])
        run_sem.click(handlers.semantic, [state, vocab], [sem_picture, areas, status])
        for event in (run_phrase.click, phrase.submit):
            event(handlers.phrase, [state, phrase], [phrase_picture, phrase_box, status])
    return app


def example_pictures(toy: bool) -> list[tuple[str, str]]:
    """The bundled toy scene; two scikit-image photos (for a real CLIP) written to a temp dir."""
    examples = [(str(TOY_EXAMPLE), 'toy world (bundled)')] if TOY_EXAMPLE.is_file() else []
    if toy:
        return examples
    from skimage import data  # photos shipped inside scikit-image: no download
    folder = Path(tempfile.mkdtemp(prefix='denseclip-demo-'))
    for name in ('chelsea', 'coffee'):
        path = folder / f'{name}.png'
        cv2.imwrite(str(path), cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR))
        examples.append((str(path), f'{name} (scikit-image)'))
    return examples


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--host', default='127.0.0.1', help='address to serve on')
    parser.add_argument('--port', type=int, default=7860)
    parser.add_argument('--classes', default=None,
                        help='initial vocabulary (default with the toy model: its 13 classes)')
    parser.add_argument('--masks', choices=('sam', 'superpixel'), default=None,
                        help='mask provider (default: sam with --sam-checkpoint, else superpixel)')
    parser.add_argument('--sam-checkpoint', default=None, help='SAM weights file')
    parser.add_argument('--sam-type', default='vit_b', help='vit_b, vit_l or vit_h')
    parser.add_argument('--max-file-size', default='20mb', help='upload limit, e.g. 20mb')
    parser.add_argument('--phrase-config', default=None,
                        help='Phrase tab: a configs/grounding/ file (needed with --config; '
                        'default: region tokens, or the dilated ResNet for an RN* --model, of '
                        'the same CLIP)')
    add_model_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    try:
        app, allowed_paths = setup(args)
    except (OSError, ValueError, KeyError) as err:
        sys.exit(f'app.py: error: {err.args[0] if isinstance(err, KeyError) else err}')
    app.queue(default_concurrency_limit=1)
    app.launch(server_name=args.host, server_port=args.port, max_file_size=args.max_file_size,
               allowed_paths=allowed_paths,
               ssr_mode=False, show_error=True, footer_links=[],
               theme=gr.themes.Default(font=['sans-serif'], font_mono=['monospace']))


def setup(args: argparse.Namespace) -> tuple[gr.Blocks, list[str]]:
    """The page and the folders it may serve files from, built from the options; errors here
    come before any server starts."""
    check_model_arguments(args)
    if args.phrase_config is not None and not Path(args.phrase_config).is_file():
        raise FileNotFoundError(f'--phrase-config {args.phrase_config}: no such file')
    toy = is_toy(args)
    vocabulary = args.classes if args.classes is not None else (TOY_VOCABULARY if toy else '')
    if vocabulary:
        parse_vocabulary(vocabulary)  # fail at start-up, not at the first click
    provider = args.masks or ('sam' if args.sam_checkpoint else 'superpixel')
    if provider == 'superpixel':
        masks = SuperpixelMasks()
    elif args.sam_checkpoint:
        masks = SamMasks(load_sam(args.sam_type, args.sam_checkpoint),
                         f'SAM {args.sam_type} ({Path(args.sam_checkpoint).name})')
    else:
        masks = SamMasks(build_small_sam(), 'RANDOMLY INITIALISED small SAM (no checkpoint): '
                         'its masks are noise, it only exercises the code path')
    clip = ('**toy CLIP** (trained on synthetic shapes; NOT a real CLIP, it only knows the '
            'toy-world classes)' if toy else f'`{args.config or args.model or args.pretrained}`')
    banner = f'CLIP: {clip} &nbsp;|&nbsp; masks: **{masks.label}**'
    logger.info('CLIP: %s; masks: %s', clip, masks.label)
    localizer = LazyLocalizer(lambda: build_localizer(phrase_arguments(args)))
    handlers = DemoHandlers(MaskNamer(build_segmenter(args)), masks, localizer)
    examples = example_pictures(toy)
    app = build_app(handlers, banner, vocabulary, examples,
                    'the red circle on the grass' if toy else 'the man in a red shirt')
    return app, sorted({str(EXAMPLES)} | {str(Path(path).parent) for path, _ in examples})


if __name__ == '__main__':
    main()
