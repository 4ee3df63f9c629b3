"""Region-mask generators: an image -> an (H, W) region map, with a disk cache.

CorrCLIP (``denseclip.models.dense.corrclip``) restricts patch interactions to regions of a
class-agnostic mask generator. A generator maps an (H, W, 3) uint8 RGB image to an (H, W)
int32 *region map*: 0 where no mask covers the pixel ("unsegmented"), 1..n the regions.

* :class:`SAMMaskGenerator`: segment-anything's automatic mask generator. SAM2
  (``sam2.automatic_mask_generator.SAM2AutomaticMaskGenerator``) when the ``sam2`` package
  imports and ``backend`` allows it, SAM (``segment_anything.SamAutomaticMaskGenerator``)
  otherwise; :attr:`SAMMaskGenerator.backend` says which ran. Prompts are batched by the
  library (``points_per_batch`` point prompts per decoder call).
* :class:`SuperpixelMaskGenerator`: Felzenszwalb-Huttenlocher superpixels (scikit-image),
  deterministic and offline: the toy world's stand-in for SAM (a toy-only deviation).

Masks -> region map (CorrCLIP corrclip_segmentor.py@103bc18 ``generate_mask``, SAM2 branch):
masks sorted by area, ascending, numbered 1..n in that order and painted in that order, so
where masks overlap the larger one (painted later) wins.

Every generator caches its maps on disk (:class:`MaskCache`) keyed by the image's hash and the
generator's settings (:meth:`settings`): weights, thresholds, points, backend.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

from denseclip.clip import WeightsNotFoundError
from denseclip.models.backbones.proxy import build_sam
from denseclip.registry import MODELS

logger = logging.getLogger(__name__)

# Bumped whenever the region-map rule changes, so old cache entries stop matching.
CACHE_FORMAT_VERSION = 1


def image_key(image: np.ndarray) -> str:
    """sha1 of an (H, W, 3) uint8 image's shape and pixels (demo/masks.py's key)."""
    digest = hashlib.sha1(str(image.shape).encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


def default_mask_cache_dir() -> Path:
    """``$DENSECLIP_CACHE_DIR/masks``, else ``~/.cache/denseclip/masks``."""
    root = os.environ.get('DENSECLIP_CACHE_DIR')
    return (Path(root) if root else Path.home() / '.cache' / 'denseclip') / 'masks'


def region_map(masks: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) int32 region map of boolean masks, the released rule (module docstring).

    Args:
        masks: (H, W) bool masks.
        shape: (H, W), for an empty list.
    """
    out = np.zeros(shape, dtype=np.int32)
    order = sorted(range(len(masks)), key=lambda i: int(masks[i].sum()))  # stable, by area
    for region, i in enumerate(order, start=1):
        out[np.asarray(masks[i], dtype=bool)] = region
    return out


def check_image(image: np.ndarray, owner: str) -> None:
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
            and image.dtype == np.uint8 and image.shape[0] > 0 and image.shape[1] > 0):
        desc = (f'{image.dtype} {image.shape}' if isinstance(image, np.ndarray)
                else type(image).__name__)
        raise ValueError(f'{owner}: expected an (H, W, 3) uint8 RGB image, got {desc}')


class MaskCache:
    """Region maps on disk: ``<root>/<settings digest>/<image sha1>.npz``.

    Entries are written to a temporary file in the same directory and renamed into place
    (:func:`denseclip.engine.checkpoint.atomic_replace`), so a reader sees a whole file or none.
    A file that cannot be read, or holds another setting, shape or dtype, is reported in the log
    and regenerated (overwritten).
    """

    def __init__(self, root: str | os.PathLike, settings: dict) -> None:
        self.settings_json = json.dumps(dict(settings, format_version=CACHE_FORMAT_VERSION),
                                        sort_keys=True, default=str)
        digest = hashlib.sha256(self.settings_json.encode()).hexdigest()[:16]
        self.dir = Path(root) / digest
        self.hits = self.misses = 0

    def path(self, key: str) -> Path:
        return self.dir / f'{key}.npz'

    def load(self, key: str, shape: tuple[int, int]) -> np.ndarray | None:
        """The cached map of image ``key`` (an (H, W) = ``shape`` image), or None."""
        path = self.path(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            with np.load(path, allow_pickle=False) as f:
                regions, settings = f['regions'], str(f['settings'])
            if settings != self.settings_json:
                raise ValueError('written with other settings')
            if regions.shape != tuple(shape) or regions.dtype != np.int32:
                raise ValueError(f'holds a {regions.dtype} {regions.shape} map, the image is '
                                 f'{tuple(shape)}')
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            logger.warning('mask cache: %s is unreadable or stale (%s); regenerating it',
                           path, e)
            self.misses += 1
            return None
        self.hits += 1
        return regions

    def save(self, key: str, regions: np.ndarray) -> Path:
        from denseclip.engine.checkpoint import atomic_write  # the engine imports models

        def write(tmp: str) -> None:
            with open(tmp, 'wb') as f:
                np.savez_compressed(f, regions=regions.astype(np.int32),
                                    settings=np.array(self.settings_json))

        return atomic_write(self.path(key), write)


class MaskGenerator(nn.Module):
    """Base of the region-mask generators: :meth:`generate` plus the disk cache.

    Args:
        cache_dir: where region maps are cached; None: :func:`default_mask_cache_dir`;
            ``False``: no cache.
    """

    def __init__(self, cache_dir: str | os.PathLike | bool | None = None) -> None:
        super().__init__()
        self.cache_dir = cache_dir
        self._cache: MaskCache | None = None

    def settings(self) -> dict:
        """Everything the region maps depend on (the cache key's second half)."""
        raise NotImplementedError

    def generate(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W) int32 region map, uncached."""
        raise NotImplementedError

    @property
    def cache(self) -> MaskCache | None:
        if self.cache_dir is False:
            return None
        if self._cache is None:
            root = default_mask_cache_dir() if self.cache_dir in (None, True) else self.cache_dir
            self._cache = MaskCache(root, self.settings())
        return self._cache

    def forward(self, image: np.ndarray) -> np.ndarray:
        """The region map of ``image``, from the cache when it holds it."""
        check_image(image, type(self).__name__)
        cache = self.cache
        key = image_key(image) if cache is not None else None
        if cache is not None:
            hit = cache.load(key, image.shape[:2])
            if hit is not None:
                return hit
        regions = self.generate(image)
        if regions.shape != image.shape[:2]:
            raise RuntimeError(f'{type(self).__name__}: a {regions.shape} map for a '
                               f'{image.shape[:2]} image')
        regions = regions.astype(np.int32)
        if cache is not None:
            cache.save(key, regions)
        return regions


@MODELS.register_module()
class SuperpixelMaskGenerator(MaskGenerator):
    """Felzenszwalb-Huttenlocher superpixels as regions (every pixel covered).

    Toy-only stand-in for SAM (no SAM weights exist offline). ``min_size`` scales with the
    image as in demo/masks.py (60 px at 224 x 224).

    Args:
        scale, sigma: ``skimage.segmentation.felzenszwalb``'s.
        min_size: smallest segment in pixels; None: max(20, H·W / 800).
        cache_dir: see :class:`MaskGenerator`.
    """

    backend = 'felzenszwalb'

    def __init__(self, scale: float = 200.0, sigma: float = 0.8, min_size: int | None = None,
                 cache_dir: str | os.PathLike | bool | None = None) -> None:
        super().__init__(cache_dir)
        self.scale, self.sigma, self.min_size = scale, sigma, min_size

    def settings(self) -> dict:
        return dict(type='felzenszwalb', scale=self.scale, sigma=self.sigma,
                    min_size=self.min_size)

    def generate(self, image: np.ndarray) -> np.ndarray:
        from skimage.segmentation import felzenszwalb

        min_size = self.min_size or max(20, image.shape[0] * image.shape[1] // 800)
        seg = felzenszwalb(image, scale=self.scale, sigma=self.sigma, min_size=min_size)
        return seg.astype(np.int32) + 1  # 1..n: no pixel is unsegmented


def sam2_available() -> bool:
    try:
        import sam2  # noqa: F401
    except ImportError:
        return False
    return True


@MODELS.register_module()
class SAMMaskGenerator(MaskGenerator):
    """segment-anything's automatic mask generator (SAM2 if available, else SAM).

    Args:
        backend: ``'auto'`` (SAM2 when ``import sam2`` works, else SAM), ``'sam2'`` or
            ``'sam'``.
        sam2_config: SAM2 model config (released: ``'sam2_hiera_l.yaml'``).
        sam2_checkpoint: its weights file (released: ``sam2_hiera_large.pt``).
        sam_type: a ``segment_anything.sam_model_registry`` key for the SAM fallback
            (``'vit_h'``), or a built ``Sam`` (tests, benchmarks: a small random one).
        sam_checkpoint: the SAM weights file (``sam_vit_h_4b8939.pth``); None with a built
            ``Sam`` or ``allow_random=True`` only.
        allow_random: build SAM with random weights when no checkpoint is given (timing runs).
        points_per_side, points_per_batch, pred_iou_thresh, stability_score_thresh,
        multimask_output: the automatic generator's settings; ``points_per_batch`` point
            prompts go through the mask decoder per call (the batching). ``multimask_output``
            is SAM2's only: segment-anything 1.0's generator always keeps 3 masks per point.
        device: where SAM runs (None: CUDA if available, else CPU). It keeps its own device:
            its weights are not the segmentor's.
        cache_dir: see :class:`MaskGenerator`.
    """

    def __init__(self, backend: str = 'auto', sam2_config: str = 'sam2_hiera_l.yaml',
                 sam2_checkpoint: str | os.PathLike | None = None,
                 sam_type: str | nn.Module = 'vit_h',
                 sam_checkpoint: str | os.PathLike | None = None, allow_random: bool = False,
                 points_per_side: int = 32, points_per_batch: int = 64,
                 pred_iou_thresh: float = 0.4, stability_score_thresh: float = 0.4,
                 multimask_output: bool = False, device: str | None = None,
                 cache_dir: str | os.PathLike | bool | None = None) -> None:
        super().__init__(cache_dir)
        if backend not in ('auto', 'sam2', 'sam'):
            raise ValueError(f"SAMMaskGenerator: backend={backend!r}; expected 'auto', 'sam2' "
                             "or 'sam'")
        if backend == 'sam2' and not sam2_available():
            raise ImportError("SAMMaskGenerator: backend='sam2' needs the sam2 package "
                              "(pip install 'git+https://github.com/facebookresearch/sam2'); "
                              "backend='auto' falls back to segment-anything")
        self.backend = 'sam2' if backend == 'sam2' or (
            backend == 'auto' and sam2_available()) else 'sam'
        self.amg = dict(points_per_side=points_per_side, points_per_batch=points_per_batch,
                        pred_iou_thresh=pred_iou_thresh,
                        stability_score_thresh=stability_score_thresh)
        self.multimask_output = multimask_output
        self.device_name = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        if self.backend == 'sam2':
            self._weights = self._require(sam2_checkpoint, 'sam2_checkpoint',
                                          'sam2_hiera_large.pt', allow_random)
            self._model_id = str(sam2_config)
            self._generator = self._build_sam2(sam2_config, self._weights)
        else:
            if isinstance(sam_type, nn.Module):
                if sam_checkpoint is not None:
                    raise ValueError('SAMMaskGenerator: pass either a built Sam or sam_type= '
                                     'with sam_checkpoint=, not both')
                self._weights, self._model_id = None, _module_digest(sam_type)
                sam = sam_type
            else:
                self._weights = self._require(sam_checkpoint, 'sam_checkpoint',
                                              f'sam_{sam_type}_*.pth', allow_random)
                self._model_id = str(sam_type)
                sam = build_sam(sam_type, self._weights, 'SAMMaskGenerator')
            from segment_anything import SamAutomaticMaskGenerator

            self._generator = SamAutomaticMaskGenerator(sam.to(self.device_name).eval(),
                                                        **self.amg)

    @staticmethod
    def _require(path, key: str, name: str, allow_random: bool) -> str | None:
        if path is None:
            if allow_random:
                return None
            raise WeightsNotFoundError(
                f'SAMMaskGenerator: no {key}. The mask generator needs its weights; download '
                f'{name} (segment-anything / SAM2 releases) on a machine with internet access '
                f"and pass mask_generator=dict(..., {key}='/path/to/{name}'), or "
                'allow_random=True for timing runs (random masks)')
        if not os.path.isfile(path):
            raise WeightsNotFoundError(f'SAMMaskGenerator: {key}={os.fspath(path)!r}: no such '
                                       'file')
        return os.fspath(path)

    def _build_sam2(self, config: str, checkpoint: str | None):
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
        from sam2.build_sam import build_sam2

        # corrclip_segmentor.py@103bc18 set_mask_generator: apply_postprocessing=False
        model = build_sam2(config, checkpoint, device=self.device_name,
                           apply_postprocessing=False)
        return SAM2AutomaticMaskGenerator(model=model, multimask_output=self.multimask_output,
                                          **self.amg)

    def settings(self) -> dict:
        weights = None
        if self._weights is not None:
            weights = dict(name=os.path.basename(self._weights),
                           bytes=os.path.getsize(self._weights))
        return dict(type='sam', backend=self.backend, model=self._model_id, weights=weights,
                    multimask_output=self.multimask_output if self.backend == 'sam2' else True,
                    **self.amg)

    @torch.inference_mode()
    def generate(self, image: np.ndarray) -> np.ndarray:
        autocast = (torch.autocast('cuda', dtype=torch.float16) if self.device_name == 'cuda'
                    and self.backend == 'sam2' else nullcontext())
        with autocast:  # released: SAM2 under CUDA fp16 autocast
            records = self._generator.generate(image)
        return region_map([r['segmentation'] for r in records], image.shape[:2])


def _module_digest(module: nn.Module) -> str:
    """A built model's identity for the cache key: a hash of its weights."""
    digest = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return f'{type(module).__name__}:{digest.hexdigest()[:16]}'
