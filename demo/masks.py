"""Mask providers of the browser demo: SAM, or deterministic superpixels.

Both turn prompts (points with labels 1 = positive / 0 = negative, an optional box) into one
(H, W) bool mask, and ``everything`` into a list of masks. Work that depends only on the image
(SAM's image embedding, the superpixel partition) is done once per image and cached by the
image's hash, so every click after the first runs only the prompt-dependent part.

- :class:`SamMasks`: ``segment_anything.SamPredictor`` / ``SamAutomaticMaskGenerator``. With a
  checkpoint (``--sam-checkpoint``, ``--sam-type vit_b|vit_l|vit_h``) this is SAM. Without one
  it is a randomly initialised small SAM (:func:`build_small_sam`): it runs the real code path
  at interactive speed on a CPU, but its masks are noise.
- :class:`SuperpixelMasks`: Felzenszwalb-Huttenlocher segments from scikit-image; a click
  selects the segment under it. Deterministic and usable offline: the demo's default when no
  SAM checkpoint is given.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from functools import partial
from pathlib import Path

import numpy as np
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor, sam_model_registry
from segment_anything.modeling import (ImageEncoderViT, MaskDecoder, PromptEncoder, Sam,
                                       TwoWayTransformer)
from skimage.segmentation import felzenszwalb

# sha1 of an image's shape and pixels: the key of every per-image cache (CorrCLIP's too)
from denseclip.models.masks import image_key


class LRUCache:
    """A small thread-safe least-recently-used dict."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: str, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def build_small_sam(seed: int = 0, image_size: int = 512, width: int = 64, depth: int = 2,
                    prompt_dim: int = 64) -> Sam:
    """A randomly initialised SAM with SAM's modules at reduced size (0.45 M parameters).

    Same wiring as ``segment_anything.build_sam._build_sam`` (ViT image encoder with windowed
    and one global attention block, prompt encoder, two-way-transformer mask decoder) with a
    512-pixel input, width 64, 2 encoder blocks and 64-d prompts. Measured on 2 CPU cores: image
    embedding 0.2 s, one prompt 20-100 ms (the random ``vit_b`` takes 39 s per image).
    """
    torch.manual_seed(seed)
    grid = image_size // 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=depth, embed_dim=width, img_size=image_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=2, patch_size=16,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=(depth - 1,), window_size=14,
            out_chans=prompt_dim),
        prompt_encoder=PromptEncoder(embed_dim=prompt_dim, image_embedding_size=(grid, grid),
                                     input_image_size=(image_size, image_size), mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=4 * prompt_dim,
                                          num_heads=4),
            transformer_dim=prompt_dim, iou_head_depth=3, iou_head_hidden_dim=prompt_dim),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


def load_sam(model_type: str, checkpoint: str | Path) -> Sam:
    """SAM of ``model_type`` with ``checkpoint``'s weights (``weights_only=True``, strict)."""
    if model_type not in sam_model_registry:
        raise KeyError(f'--sam-type {model_type!r}; known: {sorted(sam_model_registry)}')
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f'--sam-checkpoint {checkpoint}: no such file')
    sam = sam_model_registry[model_type]()
    state = torch.load(checkpoint, map_location='cpu', weights_only=True)
    sam.load_state_dict(state, strict=True)
    return sam.eval()


class CachedSamPredictor(SamPredictor):
    """``SamPredictor`` whose ``set_image`` reuses the embedding of an image seen before.

    The automatic mask generator calls ``set_image`` itself; giving it this predictor lets
    "segment everything" reuse the embedding of the clicks too.
    """

    def __init__(self, sam: Sam, cache_size: int = 8) -> None:
        super().__init__(sam)
        self.cache = LRUCache(cache_size)

    def set_image(self, image: np.ndarray, image_format: str = 'RGB') -> None:
        key = image_key(image) + image_format
        hit = self.cache.get(key)
        if hit is None:
            super().set_image(image, image_format)
            self.cache.put(key, (self.features, self.original_size, self.input_size))
            return
        self.reset_image()
        self.features, self.original_size, self.input_size = hit
        self.is_image_set = True


class SamMasks:
    """Masks from SAM (``label`` says whether the weights are real or random)."""

    def __init__(self, sam: Sam, label: str) -> None:
        self.label = label
        self.predictor = CachedSamPredictor(sam)
        self.generator = SamAutomaticMaskGenerator(sam, points_per_side=16)
        self.generator.predictor = self.predictor
        self._lock = threading.Lock()  # the predictor holds one image at a time

    def prepare(self, image: np.ndarray) -> None:
        """Compute (or find in the cache) the image embedding."""
        with self._lock:
            self.predictor.set_image(image)

    def from_prompts(self, image: np.ndarray, points: list[tuple[float, float, int]],
                     box: tuple[float, float, float, float] | None) -> np.ndarray:
        """(H, W) bool: SAM's best-scored of its three masks for ``(x, y, label)`` points and
        an ``(x0, y0, x1, y1)`` box (one mask when several prompts disambiguate)."""
        coords = np.array([[x, y] for x, y, _ in points], np.float32) if points else None
        labels = np.array([lab for _, _, lab in points], np.int64) if points else None
        box_arr = np.array(box, np.float32) if box is not None else None
        multi = box is None and len(points) == 1  # as SAM's notebook advises
        with self._lock:
            self.predictor.set_image(image)
            masks, scores, _ = self.predictor.predict(point_coords=coords, point_labels=labels,
                                                      box=box_arr, multimask_output=multi)
        return masks[int(np.argmax(scores))]

    def everything(self, image: np.ndarray) -> list[np.ndarray]:
        """All masks of ``SamAutomaticMaskGenerator`` (16x16 points), largest first."""
        with self._lock:
            records = self.generator.generate(image)
        records.sort(key=lambda r: -r['area'])
        return [r['segmentation'] for r in records]


class SuperpixelMasks:
    """Masks from Felzenszwalb-Huttenlocher segments (scikit-image), cached per image.

    A positive point adds the segment under it, a negative point removes its segment, a box
    selects the segments lying mostly (> 50 %) inside it.
    """

    label = 'superpixels (Felzenszwalb, deterministic; not SAM)'

    def __init__(self, cache_size: int = 8) -> None:
        self.cache = LRUCache(cache_size)

    def segments(self, image: np.ndarray) -> np.ndarray:
        """(H, W) int segment ids. ``min_size`` scales with the image (60 px at 224 x 224)."""
        key = image_key(image)
        seg = self.cache.get(key)
        if seg is None:
            min_size = max(20, image.shape[0] * image.shape[1] // 800)
            seg = felzenszwalb(image, scale=200, sigma=0.8, min_size=min_size)
            self.cache.put(key, seg)
        return seg

    def prepare(self, image: np.ndarray) -> None:
        self.segments(image)

    def from_prompts(self, image: np.ndarray, points: list[tuple[float, float, int]],
                     box: tuple[float, float, float, float] | None) -> np.ndarray:
        seg = self.segments(image)
        H, W = seg.shape
        mask = np.zeros((H, W), bool)
        if box is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            inside = np.zeros((H, W), bool)
            inside[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = True
            total = np.bincount(seg.ravel())
            within = np.bincount(seg[inside], minlength=total.size)
            mask |= np.isin(seg, np.flatnonzero(within > 0.5 * total)) & inside
        for x, y, lab in points:  # later clicks override earlier ones
            region = seg == seg[min(int(y), H - 1), min(int(x), W - 1)]
            mask = mask | region if lab == 1 else mask & ~region
        return mask

    def everything(self, image: np.ndarray) -> list[np.ndarray]:
        seg = self.segments(image)
        ids = np.argsort(-np.bincount(seg.ravel()))
        return [seg == i for i in ids if (seg == i).any()]
