"""Speed, memory and agreement of the batched segmentor against a one-window-at-a-time loop,
and the cost of a training step.

Four modes, each measured on one seeded model (random weights unless ``--pretrained``):

* image (default): seconds per image of (a) the reference loop written below, SCLIP's
  ``forward_slide`` (SCLIP clip_segmentor.py@d84d4ab): one window at a time, batch 1, float32,
  under ``torch.no_grad`` as mmengine's test loop runs it, each window's logits zero-padded to
  the image and added (``reference``) or added into their slice (``reference_slice``); and
  (b) :class:`OpenVocabSegmentor` (``inference`` + ``postprocess``) in float32 and at
  ``--dtype``. Also their ratios, argmax agreement and logit differences, peak resident
  memory, the machine's GEMM throughput and the share of it each path reaches (FLOPs counted
  by ``FlopCounterMode``).
* ``--memory``: peak resident memory of (a) and (b) for large images and several window
  batches, after a one-window warm-up (one-time allocations such as the kept bf16 weight
  casts are reported apart).
* ``--text``: building the text classifier with full 77-token prompts (reference,
  ``encode_text``), with the trimmed encoder (cold), and from the disk cache.
* ``--train METHOD``: seconds per iteration and peak memory of one training step of a trained
  method's config (:data:`TRAIN_CONFIGS`, or a config file; random weights, ``SyncBN`` ->
  ``BN``) on ``--batch`` random ``--size`` crops with random labels, per ``--dtypes``: fp32, or
  ``torch.autocast`` around forward and loss (backward and the step outside it, as
  ``AmpOptimWrapper``); the optimizer is the config's ``optim_wrapper``. Median of
  ``--repeat`` steps after one warm-up step (which creates the optimizer state; reported
  apart); peak memory: CPU, resident high-water-mark growth, CUDA, ``max_memory_allocated``.
* ``--infer METHOD``: seconds per image and peak memory of a trained method's test-time
  ``predict`` (its config's windows and views; random weights) on one ``--size`` image, for
  each test vocabulary size of ``--vocab-sizes`` (ADE20K-847's names, the first N): whether
  memory grows with the vocabulary (CAT-Seg prunes to 256 classes). The first call, which also
  encodes the vocabulary, is reported apart; the timed calls use the cached text.
* ``--method corrclip`` (image mode): CorrCLIP's seconds per image with the mask generator's
  share apart, cold (an empty mask cache: SAM runs) and warm (every map read from the disk
  cache), over ``--images`` toy scenes with the harness's windows (336/112, padded to 56).
  SAM is demo/masks.py's small random SAM (``build_small_sam``) unless ``--sam-checkpoint``
  (with ``--sam-type``) gives real weights; DINO ViT-B/8 is random unless ``--pretrained``-style
  weights are configured (its cost does not depend on them).
* ``--textspan``: peak memory and seconds of TextSpan's decomposition
  (:func:`denseclip.models.textspan.decompose_image`) of one 224x224 image at ViT-B/16 and
  ViT-L/14 geometry (random weights, open_clip's configs; ``--textspan-models``): the full
  (B, L, 1+N, H, E) term tensor (``keep_terms=True``, the released layout) against the
  accumulate-only sums the segmenter and TextSpan read.
* ``--deform-attn``: multi-scale deformable attention at the geometry of Mask2Former's pixel
  decoder on a ``--size`` crop (strides 8, 16, 32, every token a query, 8 heads of 32, 4
  points, batch ``--batch``): denseclip.compat's ``ms_deform_attn_forward`` / ``_backward``
  (what mmcv's ``MultiScaleDeformableAttnFunction`` calls without compiled ops) against mmcv's
  own ``multi_scale_deformable_attn_pytorch`` with autograd; forward alone (inference) and
  forward + backward, seconds and peak memory, per ``--dtypes``.

Every measurement runs in its own subprocess (``--worker``), so each peak memory is that path's
own: the resident high-water mark is reset once the model is built (``/proc/self/clear_refs``)
and the peak reported as a delta over the resident size at that point.

    python tools/benchmark.py --method sclip --size 448 --dtype bf16 --repeat 3 --json out.json
    python tools/benchmark.py --model denseclip/toy/toy_clip.json \\
        --pretrained denseclip/toy/toy_clip.safetensors --images 8 --dtype bf16
    python tools/benchmark.py --memory --dtype bf16
    python tools/benchmark.py --text --json text.json
    python tools/benchmark.py --train denseclip --repeat 5 --json train.json  # RN50, 512², batch 2
    python tools/benchmark.py --train denseclip --device cuda --dtypes fp32 bf16 fp16
    python tools/benchmark.py --train catseg --repeat 3              # ViT-B/16, 384², batch 2
    python tools/benchmark.py --infer catseg --vocab-sizes 150 847 --repeat 1
    python tools/benchmark.py --train mta_clip --repeat 2             # RN50, 512², batch 2
    python tools/benchmark.py --deform-attn --repeat 5 --dtypes fp32
    python tools/benchmark.py --textspan --textspan-models ViT-B-16 ViT-L-14
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

logger = logging.getLogger('benchmark')

ROOT = Path(__file__).resolve().parents[1]
TOY_CONFIG = ROOT / 'denseclip' / 'toy' / 'toy_clip.json'
DTYPES = ('fp32', 'bf16', 'fp16')
MIB = 2 ** 20
MAX_OTHER_LOAD = 0.1  # above it a worker's timing is flagged (and rerun with --retries)
# The heavy imports (torch, denseclip) happen in the functions that need them: the parent
# process only orchestrates workers and compares their outputs.


# ----------------------------------------------------------------------------- the model
def vocabulary(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(class names, templates) for the image modes: the toy world's, or ADE20K's names."""
    if args.vocab == 'toy':
        from denseclip.toy import TOY_CLASSES, TOY_TEMPLATES

        return list(TOY_CLASSES), list(TOY_TEMPLATES)
    # One template: the image-side cost does not depend on the prompt ensemble.
    return ade20k_names(args.classes), ['a photo of a {}.']


def ade20k_names(count: int) -> list[str]:
    """The first ``count`` ADE20K class names (mmseg's list)."""
    import denseclip  # noqa: F401  (installs the mmcv shim mmseg.datasets needs)
    from mmseg.datasets import ADE20KDataset

    names = [name.strip() for name in ADE20KDataset.METAINFO['classes']]
    if not 1 <= count <= len(names):
        raise ValueError(f'--classes {count}: expected 1..{len(names)} (ADE20K names)')
    return names[:count]


def build_segmentor(args: argparse.Namespace, dtype: str, window_batch: int):
    """The seeded segmentor (same weights in every worker) on ``args.device``."""
    import torch

    import denseclip  # noqa: F401  (registration)
    from denseclip.apis.dense_clip import dense_method_kwargs, method_config
    from denseclip.models.segmentors import OpenVocabSegmentor

    names, templates = vocabulary(args)
    harness = method_config(args.method)
    settings = harness.model
    backbone = dict(type='CLIPViT', model=args.model, pretrained=args.pretrained,
                    **dense_method_kwargs(args.method, harness=harness))
    torch.manual_seed(0)
    seg = OpenVocabSegmentor(backbone=backbone, templates=templates,
                             logit_scale=settings.get('logit_scale', 40.0),
                             slide_crop=args.crop, slide_stride=args.stride,
                             pad_to_patch=settings.get('pad_to_patch', False),
                             window_batch=window_batch, dtype=dtype)
    seg = seg.to(args.device).eval()
    seg.set_vocabulary(names)  # text embeddings on the model's device
    return seg


def cast_weights_mib(seg) -> float:
    """Size of the low-precision weight copies the segmentor keeps (0 for float32)."""
    from denseclip.models.segmentors.base import PRECISIONS
    from denseclip.models.segmentors.open_vocab import autocast_weights

    dtype = PRECISIONS[seg.dtype]
    if dtype is None:
        return 0.0
    numel = sum(p.numel() for p in autocast_weights(seg.backbone).values())
    return numel * dtype.itemsize / MIB


def checksum(module) -> float:
    """Sum of all parameters in float64: equal across workers iff they built one model."""
    import torch

    with torch.no_grad():
        return float(sum(p.double().sum() for p in module.parameters()))


def toy_images(args: argparse.Namespace):
    """``--images`` CLIP-normalised toy scenes, each (1, 3, size, size), on the device."""
    import torch

    from denseclip.models.segmentors import CLIP_MEAN, CLIP_STD
    from denseclip.toy.world import generate_scene, scene_seed

    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    out = []
    for i in range(args.images):
        rgb = generate_scene(scene_seed(0, i), args.size).image  # (S, S, 3) uint8
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()  # (1, 3, S, S)
        out.append(((x - mean) / std).to(args.device))
    return out


def reference_slide(seg, image, crop: int, stride: int, pad: bool,
                    canvas_add: str = 'slice'):
    """SCLIP ``forward_slide`` (clip_segmentor.py@d84d4ab): one window at a time, float32.

    Per window: encode at batch 1, unit features, cosine with the text, bilinear upsampling to
    the window, added into the canvas; the canvas is divided by the window count. Padding, if
    ``pad``, is ClearCLIP's ``compute_padsize`` (centred, extra pixel right/bottom); otherwise
    the stride-p patch conv ignores the remainder, as SCLIP's.

    Args:
        seg: an :class:`OpenVocabSegmentor` (its backbone and text embeddings are used).
        image: (1, 3, H, W) CLIP-normalised.
        canvas_add: ``'pad'`` adds each window as the released code does, zero-padded to the
            whole image (``preds += F.pad(crop_seg_logit, ...)``: a (1, Q, H, W) temporary and
            a whole-canvas add per window); ``'slice'`` adds it into its canvas slice. Both give
            the same bits (x + 0 = x).

    Returns:
        (1, Q, H, W) float32 raw cosine logits.
    """
    import torch
    import torch.nn.functional as F

    _, _, H, W = image.shape
    text = seg.classifier.embeddings  # (Q, E)
    p = seg.backbone.output_stride
    canvas = image.new_zeros((1, text.shape[0], H, W))
    count = image.new_zeros((1, 1, H, W))
    for i in range(max(H - crop + stride - 1, 0) // stride + 1):
        for j in range(max(W - crop + stride - 1, 0) // stride + 1):
            y2, x2 = min(i * stride + crop, H), min(j * stride + crop, W)
            y1, x1 = max(y2 - crop, 0), max(x2 - crop, 0)
            window = image[:, :, y1:y2, x1:x2]
            h, w = window.shape[2:]
            left = top = 0
            if pad:
                extra_w, extra_h = -w % p, -h % p
                left, top = extra_w // 2, extra_h // 2
                window = F.pad(window, (left, extra_w - left, top, extra_h - top))
                size = window.shape[2:]
            else:
                window, size = window[:, :, :h - h % p, :w - w % p], (h, w)
            feats = seg.backbone.encode_dense(window)  # (1, E, h', w')
            feats = feats / feats.norm(dim=1, keepdim=True)
            logits = torch.einsum('behw,qe->bqhw', feats, text)  # (1, Q, h', w')
            logits = F.interpolate(logits, size=size, mode='bilinear', align_corners=False)
            logits = logits[:, :, top:top + h, left:left + w]  # (1, Q, h, w)
            if canvas_add == 'pad':
                canvas += F.pad(logits, (x1, W - x2, y1, H - y2))
            else:
                canvas[:, :, y1:y2, x1:x2] += logits
            count[:, :, y1:y2, x1:x2] += 1
    return canvas / count


# ----------------------------------------------------------------------------- workers
def set_threads(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def worker_gemm(args: argparse.Namespace) -> dict:
    """GEMM GFLOP/s per dtype, measured in this process."""
    import torch

    from denseclip.utils.perf import gemm_gflops

    set_threads(args)
    dtypes = ['fp32', 'bf16'] + (['fp16'] if args.device == 'cuda' else [])
    return dict(gemm_gflops={d: gemm_gflops(d, args.device, args.gemm_size) for d in dtypes},
                threads=torch.get_num_threads())


def worker_image(args: argparse.Namespace, path: str, out_dir: Path) -> dict:
    """Time one path over the toy images; save its logits and labels for the comparison."""
    import torch

    from denseclip.models.segmentors import slide_windows
    from denseclip.utils.perf import MemoryMeter, count_flops, synchronize, time_runs

    reference = path.startswith('reference')
    dtype = 'fp32' if reference else path.split('_')[1]
    seg = build_segmentor(args, dtype, 1 if reference else args.window_batch)
    images = toy_images(args)
    size = (args.size, args.size)
    pad = seg.pad_to_patch
    canvas_add = 'slice' if path == 'reference_slice' else 'pad'
    results: list[tuple] = []

    def run_reference():
        results.clear()
        with torch.no_grad():  # mmengine's test loop
            for image in images:
                logits = reference_slide(seg, image, args.crop, args.stride, pad, canvas_add)
                # the released code resizes to ori_shape even when it is the same size
                logits = torch.nn.functional.interpolate(logits, size=size, mode='bilinear',
                                                         align_corners=False)
                results.append((logits[0], seg.postprocess(logits[0])[1]))

    def run_ours():
        results.clear()
        with torch.inference_mode():
            for image in images:
                logits = seg.inference(image, size)
                results.append((logits[0], seg.postprocess(logits[0])[1]))

    meter = MemoryMeter(args.device)
    meter.start()
    times = time_runs(run_reference if reference else run_ours, args.repeat, args.device)
    out = dict(meter.stop(), dtype=dtype, window_batch=1 if reference else seg.window_batch,
               seconds_per_image=statistics.median(times) / len(images),
               seconds_runs=times, checksum=checksum(seg), num_queries=seg.num_queries,
               cast_weights_mib=cast_weights_mib(seg))
    # one more pass with the image encoder timed: its share against the rest (text cosine,
    # upsampling, merging, softmax, post-processing)
    encoder: list[float] = []
    forward_dense = seg.backbone.forward_dense

    def timed_forward_dense(x):
        synchronize(args.device)
        start = time.perf_counter()
        dense = forward_dense(x)
        synchronize(args.device)
        encoder.append(time.perf_counter() - start)
        return dense

    seg.backbone.forward_dense = timed_forward_dense
    try:
        synchronize(args.device)
        start = time.perf_counter()
        (run_reference if reference else run_ours)()  # warm since the timed runs
        synchronize(args.device)
        total = time.perf_counter() - start
    finally:
        del seg.backbone.forward_dense
    out.update(encoder_seconds_per_image=sum(encoder) / len(images),
               other_seconds_per_image=max(total - sum(encoder), 0.0) / len(images))
    np.save(out_dir / f'{path}_logits.npy', torch.stack([r[0] for r in results]).cpu().numpy())
    np.save(out_dir / f'{path}_labels.npy', torch.stack([r[1] for r in results]).cpu().numpy())
    boxes = slide_windows(args.size, args.size, args.crop, args.stride)
    crops = torch.cat([images[0][:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in boxes])
    batch = crops[:seg.window_batch]
    per_window = count_flops(lambda: seg.window_logits(batch)) / len(batch)
    out.update(windows=len(boxes), gflop_per_window=per_window / 1e9,
               gflop_per_image=per_window * len(boxes) / 1e9)
    return out


def worker_memory(args: argparse.Namespace) -> dict:
    """Peak memory of one (image size, window batch) run of the segmentor or the reference."""
    import torch

    from denseclip.models.segmentors import slide_windows
    from denseclip.utils.perf import MemoryMeter, synchronize

    width, height = args.mem_size
    reference = args.mem_path == 'reference'
    seg = build_segmentor(args, 'fp32' if reference else args.dtype,
                          1 if reference else args.window_batch)
    pad = seg.pad_to_patch
    image = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    image = image.to(args.device)

    def segment(x):
        with torch.inference_mode():
            if reference:  # the released loop: each window zero-padded to the image
                logits = reference_slide(seg, x, args.crop, args.stride, pad, 'pad')
            else:
                logits = seg.inference(x, tuple(x.shape[2:]))
            seg.postprocess(logits[0])

    # one window first: one-time allocations (bf16 weight casts, kernel caches) are not peaks
    segment(image[:, :, :args.crop, :args.crop])
    meter = MemoryMeter(args.device)
    meter.start()
    start = time.perf_counter()
    segment(image)
    synchronize(args.device)
    seconds = time.perf_counter() - start
    windows = len(slide_windows(height, width, args.crop, args.stride))
    q = seg.num_queries
    return dict(meter.stop(), width=width, height=height, windows=windows,
                window_batch=1 if reference else args.window_batch,
                path='reference' if reference else f'ours_{args.dtype}', seconds=seconds,
                canvas_mib=q * height * width * 4 / MIB,
                all_windows_logits_mib=windows * q * args.crop ** 2 * 4 / MIB,
                cast_weights_mib=0.0 if reference else cast_weights_mib(seg))


def worker_text(args: argparse.Namespace, out_dir: Path) -> dict:
    """Full-context reference, trimmed cold build and cache hit of one classifier."""
    import open_clip
    import torch
    import torch.nn.functional as F

    import denseclip  # noqa: F401
    from denseclip.clip import load_clip
    from denseclip.models.text import Vocabulary, build_text_classifier
    from denseclip.models.text.templates import get_templates
    from denseclip.utils.perf import synchronize

    torch.manual_seed(0)
    clip, source = load_clip(args.model, args.pretrained)
    clip = clip.to(args.device)
    tokenizer = open_clip.get_tokenizer(source.tokenizer_name)
    vocab = Vocabulary.from_list(ade20k_names(args.text_classes))
    templates = get_templates(args.templates)
    prompts = [t.format(q) for q in vocab.queries for t in templates]
    batch_size = 256  # build_text_classifier's default

    def full_context() -> torch.Tensor:
        chunks, kept = [], []
        with torch.inference_mode():
            for start in range(0, len(prompts), batch_size):
                tokens = tokenizer(prompts[start:start + batch_size]).to(args.device)
                kept.append(int(tokens.argmax(-1).max()) + 1)  # the trimmed encoder's length
                chunks.append(F.normalize(clip.encode_text(tokens).float(), dim=-1))
            emb = torch.cat(chunks).view(len(vocab.queries), len(templates), -1)  # (Q, T, D)
        full_context.kept = kept
        return F.normalize(emb.mean(1), dim=-1)  # (Q, D)

    def timed(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
        synchronize(args.device)
        start = time.perf_counter()
        value = fn()
        synchronize(args.device)
        return value, time.perf_counter() - start

    cache = out_dir / 'text-cache'
    model_id = f'benchmark:{uuid.uuid4().hex}'  # a fresh key: the first build is cold

    def ours() -> torch.Tensor:
        return build_text_classifier(clip, tokenizer, vocab, templates, model_id=model_id,
                                     cache_dir=cache).embeddings

    reference, t_full = timed(full_context)
    cold, t_cold = timed(ours)
    cached, t_cache = timed(ours)
    return dict(classes=vocab.num_classes, templates=len(templates), prompts=len(prompts),
                context_length=int(clip.positional_embedding.shape[0]),
                mean_trimmed_length=statistics.mean(full_context.kept),
                seconds_full_context=t_full, seconds_trimmed_cold=t_cold,
                seconds_cache=t_cache, speedup_trimmed=t_full / t_cold,
                max_abs_diff_trimmed_vs_full=float((cold - reference).abs().max()),
                max_abs_diff_cache_vs_cold=float((cached - cold).abs().max()))


def build_corrclip(args: argparse.Namespace, cache_dir: str):
    """CorrCLIP's segmentor from its harness: random CLIP (``--model``, or ``--pretrained``),
    random DINO ViT-B/8, SAM from ``--sam-checkpoint`` or demo/masks.py's small random SAM."""
    import torch

    import denseclip  # noqa: F401  (registration)
    from denseclip.apis.dense_clip import dense_method_kwargs, method_config
    from denseclip.registry import MODELS

    names, templates = vocabulary(args)
    harness = method_config('corrclip')
    cfg = harness.model.to_dict()
    kwargs = dense_method_kwargs('corrclip', harness=harness)
    if args.model is not None and Path(str(args.model)).resolve() == TOY_CONFIG:
        kwargs['dense']['num_spatial'] = 2  # the toy CLIP has 4 blocks
    kwargs['dense']['proxy'].update(pretrained=None)
    cfg['backbone'] = dict(type='CLIPViT', model=args.model, pretrained=args.pretrained,
                           **kwargs)
    torch.manual_seed(0)
    if args.sam_checkpoint:
        cfg['mask_generator'].update(backend='sam', sam_type=args.sam_type,
                                     sam_checkpoint=args.sam_checkpoint)
    else:
        sys.path.insert(0, str(ROOT))
        from demo.masks import build_small_sam

        cfg['mask_generator'].update(backend='sam', sam_type=build_small_sam(),
                                     sam_checkpoint=None)
    cfg['mask_generator'].update(device=args.device, cache_dir=cache_dir)
    cfg.update(templates=templates, window_batch=args.window_batch, vocabulary=None,
               dtype=args.dtype)
    seg = MODELS.build(cfg).to(args.device).eval()
    seg.set_vocabulary(names)
    return seg


def worker_corrclip(args: argparse.Namespace, out_dir: Path) -> dict:
    """Seconds per image of CorrCLIP, the mask generator's share apart: a cold pass (fresh
    mask cache) and a warm pass (the maps on disk), ``--repeat`` times each."""
    import torch

    from denseclip.utils.perf import MemoryMeter, synchronize

    images = toy_images(args)
    size = (args.size, args.size)
    cold, warm = [], []
    meter = MemoryMeter(args.device)
    meter.start()
    seg = build_corrclip(args, str(out_dir / 'masks-0'))
    for run in range(args.repeat + 1):  # run 0 warms the model up (its masks are not reused)
        seg.mask_generator.cache_dir = str(out_dir / f'masks-{run}')
        seg.mask_generator._cache = None  # a fresh, empty cache
        for rows in (cold, warm):
            seg.mask_seconds = 0.0
            synchronize(args.device)
            start = time.perf_counter()
            with torch.inference_mode():
                for image in images:
                    seg.postprocess(seg.inference(image, size)[0])
            synchronize(args.device)
            if run:
                rows.append((time.perf_counter() - start, seg.mask_seconds))
    gen = seg.mask_generator
    out = dict(meter.stop(), dtype=args.dtype, images=len(images), size=args.size,
               device=args.device, threads=torch.get_num_threads(), repeat=args.repeat,
               crop=seg.slide_crop, stride=seg.slide_stride, backend=gen.backend,
               sam=('checkpoint ' + os.path.basename(args.sam_checkpoint)
                    if args.sam_checkpoint else 'small random SAM (demo/masks.py)'),
               points_per_side=gen.amg['points_per_side'],
               points_per_batch=gen.amg['points_per_batch'], cache_hits=gen.cache.hits,
               cache_misses=gen.cache.misses)
    for name, rows in (('cold', cold), ('warm', warm)):
        total = statistics.median(r[0] for r in rows) / len(images)
        masks = statistics.median(r[1] for r in rows) / len(images)
        out[name] = dict(seconds_per_image=total, mask_seconds_per_image=masks,
                         other_seconds_per_image=total - masks, mask_share=masks / total)
    return out


def run_corrclip(args: argparse.Namespace, out_dir: Path) -> dict:
    return dict(corrclip=spawn(args, out_dir, 'corrclip'))


# ----------------------------------------------------------------------------- training
# --train METHOD: the config each trained method's step is measured with (one line per method).
TRAIN_CONFIGS = {
    'denseclip': 'configs/denseclip/denseclip_r50_ade20k-512x512.py',
    'catseg': 'configs/catseg/catseg_vit-b16_coco-stuff171-384x384.py',
    'mta_clip': 'configs/mta_clip/mta-clip_r50_ade20k-512x512.py',
}
# The crop each method trains on (--size default of --train).
TRAIN_SIZES = {'denseclip': 512, 'catseg': 384, 'mta_clip': 512}


def train_config_path(spec: str | os.PathLike) -> Path:
    """The config file of ``--train``: a method of :data:`TRAIN_CONFIGS` or a config path."""
    name = TRAIN_CONFIGS.get(str(spec))
    path = ROOT / name if name else Path(spec)
    if not path.is_file():
        raise ValueError(f'--train {spec}: neither a method ({", ".join(TRAIN_CONFIGS)}) nor a '
                         'config file')
    return path


def replace_syncbn(node):
    """Every ``type='SyncBN'`` of a nested config -> ``'BN'``, in place (one process)."""
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
        for value in node.values():
            replace_syncbn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            replace_syncbn(value)
    return node


def train_config(spec):
    """The mmengine ``Config`` of ``--train`` (a method name, a config path, or a ``Config``),
    set for one process without downloads: random weights (``pretrained=None`` on the
    backbone, and on the text encoder if it loads its own) and ``SyncBN`` -> ``BN``."""
    from mmengine.config import Config

    cfg = spec if isinstance(spec, Config) else Config.fromfile(str(train_config_path(spec)))
    cfg.model.backbone.pretrained = None
    if 'pretrained' in (cfg.model.get('text_encoder') or {}):
        cfg.model.text_encoder.pretrained = None
    replace_syncbn(cfg.model)
    return cfg


def train_setup(cfg, size: int, batch: int, device: str = 'cpu', seed: int = 0) -> tuple:
    """(model, optim_wrapper, images, samples) of one training step.

    The seeded model of ``cfg`` (see :func:`train_config`) in train mode on ``device``; the
    optimizer wrapper mmengine builds from the config's ``optim_wrapper`` (its param groups,
    lr multipliers and constructor; plain AdamW, lr 1e-4, over the trainable parameters if the
    config has none); a seeded batch of ``batch`` random images (B, 3, size, size), taken as
    already normalised (the data preprocessor is not run), and ``SegDataSample``s with random
    ``gt_sem_seg`` in [0, classes) of the model's training vocabulary.
    """
    import torch
    from mmengine.optim import OptimWrapper, build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    import denseclip  # noqa: F401  (registration)
    from denseclip.registry import MODELS

    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg.model)).to(device).train()
    if cfg.get('optim_wrapper'):
        optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    else:
        trainable = [p for p in model.parameters() if p.requires_grad]
        optim = OptimWrapper(torch.optim.AdamW(trainable, lr=1e-4))
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, size, size, generator=gen).to(device)
    classes = len(model.vocabulary.queries)
    labels = torch.randint(0, classes, (batch, 1, size, size), generator=gen).to(device)
    shapes = dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size))
    samples = [SegDataSample(gt_sem_seg=PixelData(data=label), metainfo=shapes)
               for label in labels]
    return model, optim, images, samples


def train_step(model, optim, images, samples, dtype: str = 'fp32'):
    """One training step as mmengine's ``BaseModel.train_step`` runs it under
    ``AmpOptimWrapper``: ``model.loss`` under ``torch.autocast`` (none for fp32), the terms
    whose key contains ``'loss'`` summed outside it (``parse_losses``), then backward, the
    optimizer step and ``zero_grad`` (``update_params``). Returns the detached total loss."""
    import torch

    from denseclip.utils.perf import DTYPES

    if dtype == 'fp32':
        losses = model.loss(images, samples)
    else:
        with torch.autocast(images.device.type, dtype=DTYPES[dtype]):
            losses = model.loss(images, samples)
    loss, _ = model.parse_losses(losses)
    optim.update_params(loss)
    return loss.detach()


def measure_train(model, optim, images, samples, dtype: str = 'fp32', repeat: int = 3,
                  device: str = 'cpu') -> dict:
    """Seconds and peak memory of :func:`train_step`: one warm-up step (it also creates the
    optimizer state), then ``repeat`` timed steps, each timed alone.

    Memory: CPU, the growth of the resident high-water mark over the resident size at the
    start (:class:`MemoryMeter`); CUDA, ``max_memory_allocated`` after
    ``reset_peak_memory_stats`` (``cuda_peak_mib``, all live tensors: weights, optimizer state,
    activations) and its growth over the allocation at the start. ``first_step_*``: the
    warm-up step; the others: the timed steps.
    """
    import torch

    from denseclip.utils.perf import MemoryMeter, synchronize

    params = list(model.parameters())
    losses: list[float] = []

    def step() -> float:
        synchronize(device)
        start = time.perf_counter()
        losses.append(float(train_step(model, optim, images, samples, dtype)))
        synchronize(device)
        return time.perf_counter() - start

    def measured(steps: int) -> tuple[list[float], dict]:
        meter = MemoryMeter(device)
        meter.start()
        times = [step() for _ in range(steps)]
        mem = meter.stop()
        if device == 'cuda':
            mem['cuda_peak_mib'] = torch.cuda.max_memory_allocated() / MIB
        mem['peak_delta_mib'] = mem['cuda_peak_delta_mib' if device == 'cuda'
                                    else 'rss_peak_delta_mib']
        return times, mem

    first_times, first = measured(1)
    times, mem = measured(repeat)
    state = [v for s in optim.optimizer.state.values() for v in s.values()
             if isinstance(v, torch.Tensor)]
    return dict(
        mem, dtype=dtype, batch=images.shape[0], size=images.shape[-1], repeat=repeat,
        device=device, seconds_per_iter=statistics.median(times), seconds_runs=times,
        first_step_seconds=first_times[0], first_step_peak_delta_mib=first['peak_delta_mib'],
        first_step_cuda_peak_mib=first.get('cuda_peak_mib'),
        params_total=sum(p.numel() for p in params),
        params_trainable=sum(p.numel() for p in params if p.requires_grad),
        params_in_optimizer=sum(p.numel() for g in optim.optimizer.param_groups
                                for p in g['params']),
        params_mib=sum(p.numel() * p.element_size() for p in params) / MIB,
        optimizer_state_mib=sum(v.numel() * v.element_size() for v in state) / MIB,
        num_classes=len(model.vocabulary.queries), losses=losses,
        threads=torch.get_num_threads())


def worker_infer(args: argparse.Namespace) -> dict:
    """Seconds and peak memory of ``predict`` of ``--infer``'s config with ``--classes``
    ADE20K-847 names as the test vocabulary, on one random ``--size`` image."""
    import torch
    from mmengine.registry import init_default_scope
    from mmseg.structures import SegDataSample

    import denseclip  # noqa: F401  (registration)
    from denseclip.datasets import ADE20K847Dataset
    from denseclip.registry import MODELS
    from denseclip.utils.perf import MemoryMeter, synchronize

    cfg = train_config(args.infer)
    names = list(ADE20K847Dataset.METAINFO['classes'])[:args.classes]
    cfg.model.test_vocabulary = [name.split(', ') for name in names]
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(args.device).eval()
    image = torch.randn(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    image = image.to(args.device)
    meta = dict(img_shape=(args.size, args.size), ori_shape=(args.size, args.size))

    def run() -> float:
        synchronize(args.device)
        start = time.perf_counter()
        model.predict(image, [SegDataSample(metainfo=meta)])
        synchronize(args.device)
        return time.perf_counter() - start

    rows = {}
    for phase, runs in (('first', 1), ('timed', args.repeat)):
        meter = MemoryMeter(args.device)
        meter.start()
        times = [run() for _ in range(runs)]
        mem = meter.stop()
        rows[phase] = dict(mem, seconds=statistics.median(times))
    key = 'cuda_peak_delta_mib' if args.device == 'cuda' else 'rss_peak_delta_mib'
    return dict(classes=args.classes, size=args.size, device=args.device,
                threads=torch.get_num_threads(), repeat=args.repeat,
                seconds_per_image=rows['timed']['seconds'], peak_delta_mib=rows['timed'][key],
                first_seconds=rows['first']['seconds'], first_peak_delta_mib=rows['first'][key])


# ----------------------------------------------------------------------------- deformable attn
DEFORM_PATHS = ('mmcv_pytorch', 'denseclip_compat')


def worker_deform_attn(args: argparse.Namespace) -> dict:
    """Seconds and peak memory of one deformable-attention path (``--deform-path``), forward
    and forward + backward, at ``--train-dtype``."""
    import torch

    import denseclip  # noqa: F401  (first: installs the compat ops mmcv.ops imports)
    from denseclip.compat import deform_ops
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
    from denseclip.utils.perf import DTYPES as TORCH_DTYPES
    from denseclip.utils.perf import MemoryMeter, synchronize

    dtype = TORCH_DTYPES[args.train_dtype] or torch.float32
    shapes = [(args.size // s, args.size // s) for s in (8, 16, 32)]
    B, H, D, L, P = args.batch, 8, 32, len(shapes), 4
    S = sum(h * w for h, w in shapes)
    gen = torch.Generator().manual_seed(0)
    value = torch.randn(B, S, H, D, generator=gen)
    loc = torch.rand(B, S, H, L, P, 2, generator=gen)
    weight = torch.rand(B, S, H, L, P, generator=gen).softmax(-1)
    grad = torch.randn(B, S, H * D, generator=gen)
    value, loc, weight, grad = (t.to(args.device, dtype) for t in (value, loc, weight, grad))
    spatial = torch.tensor(shapes, device=args.device)
    start = torch.cat([spatial.new_zeros(1), spatial.prod(1).cumsum(0)[:-1]])

    def forward(v, lc, w):
        if args.deform_path == 'mmcv_pytorch':
            return multi_scale_deformable_attn_pytorch(v, spatial, lc, w)
        return deform_ops.ms_deform_attn_forward(v, spatial, start, lc, w, 64)

    def forward_backward():
        inputs = [t.clone().requires_grad_() for t in (value, loc, weight)]
        out = forward(*inputs)
        if args.deform_path == 'mmcv_pytorch':
            out.backward(grad)
        else:  # as MultiScaleDeformableAttnFunction.backward calls it: its saved inputs
            grads = [torch.zeros_like(t) for t in inputs]
            with torch.no_grad():
                deform_ops.ms_deform_attn_backward(inputs[0], spatial, start, inputs[1],
                                                   inputs[2], grad, *grads, 64)
        return out

    def timed(fn) -> tuple[float, float]:
        with torch.no_grad() if fn is infer else torch.enable_grad():
            fn()  # warm-up
            meter = MemoryMeter(args.device)
            meter.start()
            times = []
            for _ in range(args.repeat):
                synchronize(args.device)
                t0 = time.perf_counter()
                fn()
                synchronize(args.device)
                times.append(time.perf_counter() - t0)
            mem = meter.stop()
        key = 'cuda_peak_delta_mib' if args.device == 'cuda' else 'rss_peak_delta_mib'
        return statistics.median(times), mem[key]

    def infer():
        return forward(value, loc, weight)

    fwd_s, fwd_mib = timed(infer)
    fb_s, fb_mib = timed(forward_backward)
    with torch.no_grad():
        out = infer().double()
    return dict(path=args.deform_path, dtype=args.train_dtype, device=args.device,
                output_sum=float(out.sum()), output_abs_sum=float(out.abs().sum()),
                shapes=shapes, batch=B, queries=S, repeat=args.repeat,
                threads=torch.get_num_threads(), forward_seconds=fwd_s,
                forward_peak_delta_mib=fwd_mib, forward_backward_seconds=fb_s,
                forward_backward_peak_delta_mib=fb_mib)


# ----------------------------------------------------------------------------- TextSpan
TEXTSPAN_PATHS = ('full', 'accumulate')


def worker_textspan(args: argparse.Namespace) -> dict:
    """Peak memory and seconds of one decomposition path (``--mem-path``) at the geometry of
    ``--textspan-model`` (random weights), one 224x224 image, under ``torch.no_grad``."""
    import torch

    from denseclip.models.backbones import CLIPViT
    from denseclip.models.textspan import decompose_image
    from denseclip.utils.perf import MemoryMeter, synchronize

    torch.manual_seed(0)
    backbone = CLIPViT(model=args.textspan_model, pretrained=None).eval().to(args.device)
    images = torch.randn(1, 3, 224, 224, device=args.device)
    blocks = backbone.blocks
    L, H = len(blocks), blocks[0].attn.num_heads
    T, E = (224 // backbone.patch_size) ** 2 + 1, backbone.embed_dim
    with torch.no_grad():
        meter = MemoryMeter(args.device)
        meter.start()
        synchronize(args.device)
        t0 = time.perf_counter()
        dec = decompose_image(backbone, images, keep_terms=args.mem_path == 'full')
        synchronize(args.device)
        seconds = time.perf_counter() - t0
        mem = meter.stop()
    key = 'cuda_peak_delta_mib' if args.device == 'cuda' else 'rss_peak_delta_mib'
    return dict(model=args.textspan_model, path=args.mem_path, device=args.device,
                threads=torch.get_num_threads(), layers=L, heads=H, tokens=T, embed_dim=E,
                terms_mib=L * T * H * E * 4 / MIB, peak_delta_mib=mem[key], seconds=seconds,
                embedding_sum_error=float(((dec.mlps.sum(1) + dec.heads.sum((1, 2)))
                                           - dec.embedding / dec.embedding.norm()).abs().max()))


def run_textspan(args: argparse.Namespace, out_dir: Path) -> dict:
    """One worker per geometry and path (each peak its own)."""
    return dict(textspan=[spawn(args, out_dir, 'textspan', f'--textspan-model={model}',
                                f'--mem-path={path}')
                          for model in args.textspan_models for path in TEXTSPAN_PATHS])


def worker_train(args: argparse.Namespace) -> dict:
    """:func:`measure_train` of ``--train`` at ``--train-dtype`` in this process."""
    cfg = train_config(args.train)
    setup = train_setup(cfg, args.size, args.batch, args.device)
    return measure_train(*setup, dtype=args.train_dtype, repeat=args.repeat,
                         device=args.device)


# ----------------------------------------------------------------------------- orchestration
def spawn(args: argparse.Namespace, out_dir: Path, name: str, *extra: str) -> dict:
    """Run one worker in a fresh interpreter and return its JSON result.

    Adds ``other_load``: the share of the machine's CPU time that other processes used while
    the worker ran (threads contending for the cores skew every timing). With ``--wait-idle``
    the worker starts on an idle machine and is rerun (up to ``--retries`` times) if the
    machine got busy meanwhile.
    """
    from denseclip.utils.perf import children_cpu_seconds, cpu_busy_seconds, wait_for_idle

    out = out_dir / f'{uuid.uuid4().hex}.json'
    argv = [sys.executable, str(Path(__file__).resolve()), *args.argv, *extra, '--worker', name,
            '--worker-dir', str(out_dir), '--worker-out', str(out)]
    for attempt in range(args.retries + 1):
        if args.wait_idle:
            wait_for_idle(MAX_OTHER_LOAD, timeout=args.wait_idle)
        logger.info('running %s %s', name, ' '.join(extra))
        busy, own, start = cpu_busy_seconds(), children_cpu_seconds(), time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f'worker {name} failed ({done.returncode}):\n'
                               f'{done.stderr[-4000:]}')
        elapsed = time.perf_counter() - start
        load = 0.0
        if busy is not None:
            others = cpu_busy_seconds() - busy - (children_cpu_seconds() - own)
            load = min(max(others, 0.0) / (elapsed * (os.cpu_count() or 1)), 1.0)
        if load <= MAX_OTHER_LOAD:
            break
        logger.warning('other processes used %.0f%% of the CPUs during %s (attempt %d)',
                       100 * load, name, attempt + 1)
    return dict(json.loads(out.read_text()), other_load=load, attempts=attempt + 1)


def compare(out_dir: Path, a: str, b: str) -> dict:
    """Argmax agreement and logit differences of path ``a`` against path ``b``."""
    la, lb = np.load(out_dir / f'{a}_labels.npy'), np.load(out_dir / f'{b}_labels.npy')
    ga, gb = np.load(out_dir / f'{a}_logits.npy'), np.load(out_dir / f'{b}_logits.npy')
    return dict(argmax_agreement_pct=float((la == lb).mean() * 100),
                pixels_differing=int((la != lb).sum()), pixels=int(la.size),
                labels_identical=bool(np.array_equal(la, lb)),
                logits_identical=bool(np.array_equal(ga, gb)),
                max_abs_logit_diff=float(np.abs(ga - gb).max()),
                logit_range=float(np.abs(gb).max()))


def run_image(args: argparse.Namespace, out_dir: Path) -> dict:
    paths = ['reference', 'reference_slice', 'ours_fp32']
    paths += [f'ours_{args.dtype}'] if args.dtype != 'fp32' else []
    results = {path: spawn(args, out_dir, path) for path in paths}
    if args.wait_idle:
        from denseclip.utils.perf import wait_for_idle

        wait_for_idle(MAX_OTHER_LOAD, timeout=args.wait_idle)
    gemm = worker_gemm(args)  # after the workers, so it never competes with them
    if len({r['checksum'] for r in results.values()}) != 1:
        raise RuntimeError('workers built different models: '
                           f'{ {p: r["checksum"] for p, r in results.items()} }')
    ref = results['reference']['seconds_per_image']
    ref_slice = results['reference_slice']['seconds_per_image']
    for path, r in results.items():
        r['speedup_vs_reference'] = ref / r['seconds_per_image']
        r['speedup_vs_reference_slice'] = ref_slice / r['seconds_per_image']
        r['gflops_per_second'] = r['gflop_per_image'] / r['seconds_per_image']
        peak = gemm['gemm_gflops'].get(r['dtype'])
        r['fraction_of_gemm_peak'] = r['gflops_per_second'] / peak if peak else None
    agreement = {f'{p}_vs_reference': compare(out_dir, p, 'reference') for p in paths[1:]}
    if args.dtype != 'fp32':
        agreement[f'ours_{args.dtype}_vs_ours_fp32'] = compare(out_dir, f'ours_{args.dtype}',
                                                               'ours_fp32')
    return dict(gemm, paths=results, agreement=agreement)


def run_memory(args: argparse.Namespace, out_dir: Path) -> dict:
    rows = []
    for width, height in args.memory_sizes:
        size = f'--mem-size={width}x{height}'
        rows.append(spawn(args, out_dir, 'memory', size, '--mem-path=reference'))
        for batch in args.memory_batches:
            rows.append(spawn(args, out_dir, 'memory', size, f'--window-batch={batch}'))
    return dict(memory=rows)


def run_train(args: argparse.Namespace, out_dir: Path) -> dict:
    """One worker per dtype (each peak its own), and each dtype's speed over fp32's."""
    rows = {dtype: spawn(args, out_dir, 'train', f'--train-dtype={dtype}')
            for dtype in args.dtypes}
    fp32 = rows.get('fp32')
    for r in rows.values():
        r['speedup_vs_fp32'] = (fp32['seconds_per_iter'] / r['seconds_per_iter']
                                if fp32 else None)
    return dict(train=dict(config=str(train_config_path(args.train)), rows=rows))


def run_deform_attn(args: argparse.Namespace, out_dir: Path) -> dict:
    """Both paths per dtype, each in its own worker, and ours' speed over mmcv's."""
    rows = []
    for dtype in args.dtypes:
        pair = {path: spawn(args, out_dir, 'deform_attn', f'--train-dtype={dtype}',
                            f'--deform-path={path}') for path in DEFORM_PATHS}
        ref, ours = pair['mmcv_pytorch'], pair['denseclip_compat']
        if abs(ours['output_sum'] - ref['output_sum']) > 1e-3 * ref['output_abs_sum']:
            raise RuntimeError(f"--deform-attn {dtype}: the paths' outputs differ (sums "
                               f"{ours['output_sum']} and {ref['output_sum']})")
        for phase in ('forward', 'forward_backward'):
            ours[f'{phase}_speedup'] = ref[f'{phase}_seconds'] / ours[f'{phase}_seconds']
        rows += [ref, ours]
    return dict(deform_attn=rows)


def run_infer(args: argparse.Namespace, out_dir: Path) -> dict:
    """One worker per vocabulary size (each peak its own)."""
    rows = [spawn(args, out_dir, 'infer', f'--classes={n}') for n in args.vocab_sizes]
    return dict(infer=dict(config=str(train_config_path(args.infer)), rows=rows))


def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table."""
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '---|' * len(headers)]
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def report(result: dict) -> str:
    """The human-readable tables of a result."""
    parts = [f"command: {result['command']}"] if 'command' in result else []
    if 'paths' in result:
        g = result['gemm_gflops']
        parts.append('GEMM 2048^3: ' + ', '.join(f'{k} {v:.0f} GFLOP/s' for k, v in g.items()))
        rows = []
        for path, r in result['paths'].items():
            frac = r['fraction_of_gemm_peak']
            rows.append([path, r['dtype'], r['window_batch'], f"{r['seconds_per_image']:.3f}",
                         f"{r['encoder_seconds_per_image']:.3f}",
                         f"{r['other_seconds_per_image']:.3f}",
                         f"{r['speedup_vs_reference']:.2f}x",
                         f"{r['speedup_vs_reference_slice']:.2f}x",
                         f"{r['gflop_per_image']:.1f}", f"{r['gflops_per_second']:.0f}",
                         f'{frac * 100:.0f}%' if frac is not None else '-',
                         f"{r['rss_peak_delta_mib']:.0f}", f"{r['other_load'] * 100:.0f}%"])
        parts.append(table(['path', 'dtype', 'window batch', 's/image', 'encoder s',
                            'post-processing s', 'vs reference',
                            'vs reference_slice', 'GFLOP/image', 'GFLOP/s', 'of GEMM peak',
                            'peak RSS delta MiB', 'other load'], rows))
        rows = [[name, f"{a['argmax_agreement_pct']:.3f}%",
                 f"{a['pixels_differing']} / {a['pixels']}", a['logits_identical'],
                 f"{a['max_abs_logit_diff']:.2e}", f"{a['logit_range']:.2f}"]
                for name, a in result['agreement'].items()]
        parts.append(table(['comparison', 'argmax agreement', 'pixels differing',
                            'logits identical', 'max abs logit diff', 'max abs logit'], rows))
    if 'corrclip' in result:
        r = result['corrclip']
        parts.append(f"CorrCLIP: {r['images']} toy scene(s) of {r['size']}x{r['size']}, windows "
                     f"{r['crop']}/{r['stride']}, {r['device']} ({r['threads']} threads), "
                     f"{r['dtype']}, median of {r['repeat']} after one warm-up; masks: "
                     f"{r['backend']} ({r['sam']}), {r['points_per_side']}^2 points, "
                     f"{r['points_per_batch']} prompts a batch")
        parts.append(table(
            ['mask cache', 's/image', 'mask generation s', 'mask share', 'rest s (CLIP, DINO, '
             'slide, map correction)'],
            [[name, f"{r[name]['seconds_per_image']:.3f}",
              f"{r[name]['mask_seconds_per_image']:.3f}",
              f"{r[name]['mask_share'] * 100:.0f}%",
              f"{r[name]['other_seconds_per_image']:.3f}"] for name in ('cold', 'warm')]))
    if 'memory' in result:
        rows = [[f"{r['width']}x{r['height']}", r['windows'], r['path'], r['window_batch'],
                 f"{r['rss_peak_delta_mib']:.0f}", f"{r['canvas_mib']:.0f}",
                 f"{r['all_windows_logits_mib']:.0f}", f"{r['cast_weights_mib']:.0f}",
                 f"{r['seconds']:.1f}", f"{r['other_load'] * 100:.0f}%"]
                for r in result['memory']]
        parts.append(table(['image WxH', 'windows', 'path', 'window batch',
                            'peak RSS delta MiB', 'one QxHxW canvas MiB',
                            'all windows logits MiB', 'kept weight casts MiB', 's',
                            'other load'], rows))
    if 'text' in result:
        t = result['text']
        parts.append(table(
            ['prompts', 'tokens (full / trimmed mean)', 'full context s', 'trimmed cold s',
             'speedup', 'cache s', 'max abs diff trimmed vs full', 'cache vs cold',
             'other load'],
            [[f"{t['classes']} x {t['templates']} = {t['prompts']}",
              f"{t['context_length']} / {t['mean_trimmed_length']:.1f}",
              f"{t['seconds_full_context']:.2f}", f"{t['seconds_trimmed_cold']:.2f}",
              f"{t['speedup_trimmed']:.1f}x", f"{t['seconds_cache']:.3f}",
              f"{t['max_abs_diff_trimmed_vs_full']:.1e}",
              f"{t['max_abs_diff_cache_vs_cold']:.1e}", f"{t['other_load'] * 100:.0f}%"]]))
    if 'train' in result:
        rows = list(result['train']['rows'].items())
        first = rows[0][1]
        cuda = first['device'] == 'cuda'
        try:
            config = Path(result['train']['config']).resolve().relative_to(ROOT)
        except ValueError:
            config = result['train']['config']
        parts.append(
            f"training step: {config}, {first['size']}x{first['size']}, batch {first['batch']}, "
            f"{first['device']} ({first['threads']} threads), median of {first['repeat']} timed "
            f"step{'s' * (first['repeat'] != 1)} after 1 warm-up; parameters trainable "
            f"{first['params_trainable']:,} / total {first['params_total']:,} "
            f"({first['params_mib']:.0f} MiB), optimizer state "
            f"{first['optimizer_state_mib']:.0f} MiB")
        peak = ['peak allocated MiB', 'peak delta MiB'] if cuda else ['peak RSS delta MiB']
        body = []
        for dtype, r in rows:
            ratio = r['speedup_vs_fp32']
            mem = ([f"{r['cuda_peak_mib']:.0f}"] if cuda else []) + [f"{r['peak_delta_mib']:.0f}"]
            body.append([dtype, f"{r['seconds_per_iter']:.3f}",
                         f'{ratio:.2f}x' if ratio is not None else '-', *mem,
                         f"{r['first_step_seconds']:.3f}",
                         f"{r['first_step_peak_delta_mib']:.0f}", f"{r['losses'][-1]:.4f}",
                         f"{r['other_load'] * 100:.0f}%"])
        parts.append(table(['dtype', 's/iter', 'speed vs fp32', *peak, 'first step s',
                            'first step peak delta MiB', 'last loss', 'other load'], body))
    if 'deform_attn' in result:
        rows = [[r['path'], r['dtype'], f"{r['forward_seconds']:.3f}",
                 f"{r.get('forward_speedup', 1.0):.2f}x", f"{r['forward_peak_delta_mib']:.0f}",
                 f"{r['forward_backward_seconds']:.3f}",
                 f"{r.get('forward_backward_speedup', 1.0):.2f}x",
                 f"{r['forward_backward_peak_delta_mib']:.0f}", f"{r['other_load'] * 100:.0f}%"]
                for r in result['deform_attn']]
        r = result['deform_attn'][0]
        parts.append(f"levels {r['shapes']}, batch {r['batch']}, {r['queries']} queries, "
                     f"device {r['device']}, threads {r['threads']}")
        parts.append(table(['path', 'dtype', 'forward s', 'vs mmcv', 'forward MiB',
                            'fwd+bwd s', 'vs mmcv', 'fwd+bwd MiB', 'other load'], rows))
    if 'textspan' in result:
        rows = result['textspan']
        parts.append(f"TextSpan decomposition: one 224x224 image, batch 1, random weights, "
                     f"{rows[0]['device']} ({rows[0]['threads']} threads), float32")
        parts.append(table(
            ['geometry', 'L x (1+N) x H x E', 'path', 'full term tensor MiB', 'peak delta MiB',
             's', 'max |sum - r/|r||', 'other load'],
            [[r['model'], f"{r['layers']} x {r['tokens']} x {r['heads']} x {r['embed_dim']}",
              r['path'], f"{r['terms_mib']:.0f}", f"{r['peak_delta_mib']:.0f}",
              f"{r['seconds']:.2f}", f"{r['embedding_sum_error']:.1e}",
              f"{r['other_load'] * 100:.0f}%"] for r in rows]))
    if 'infer' in result:
        rows = result['infer']['rows']
        config = Path(result['infer']['config'])
        config = config.relative_to(ROOT) if config.is_relative_to(ROOT) else config
        parts.append(f"inference: {config}, one {rows[0]['size']}x"
                     f"{rows[0]['size']} image, {rows[0]['device']} ({rows[0]['threads']} "
                     f"threads), median of {rows[0]['repeat']} after the first call")
        parts.append(table(
            ['classes', 's/image', 'peak delta MiB', 'first call s (encodes the text)',
             'first call peak delta MiB', 'other load'],
            [[r['classes'], f"{r['seconds_per_image']:.2f}", f"{r['peak_delta_mib']:.0f}",
              f"{r['first_seconds']:.2f}", f"{r['first_peak_delta_mib']:.0f}",
              f"{r['other_load'] * 100:.0f}%"] for r in rows]))
    return '\n\n'.join(parts)


def environment() -> dict:
    """Versions and CPU facts that explain the numbers, read in a worker-free way."""
    cpu = 'unknown'
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return dict(cpu=cpu, cpu_count=os.cpu_count(), python=sys.version.split()[0])


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H)."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r}: expected WIDTHxHEIGHT, e.g. 2048x1024')
    return width, height


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument('--memory', action='store_true', help='peak memory vs size and batch')
    mode.add_argument('--text', action='store_true', help='text classifier build times')
    mode.add_argument('--train', default=None, metavar='METHOD',
                      help=f"one training step: a method ({', '.join(TRAIN_CONFIGS)}) or a "
                      'config file')
    mode.add_argument('--deform-attn', action='store_true',
                      help="multi-scale deformable attention: denseclip.compat's op vs mmcv's "
                      'pure-PyTorch function')
    mode.add_argument('--textspan', action='store_true',
                      help="peak memory of TextSpan's decomposition, full vs accumulate-only")
    mode.add_argument('--infer', default=None, metavar='METHOD',
                      help='test-time predict of a trained method (or config file) per '
                      'vocabulary size')
    p.add_argument('--method', default='sclip',
                   help='a dense method name (denseclip.apis.known_methods())')
    p.add_argument('--model', default='ViT-B-16', help='open_clip name or model JSON')
    p.add_argument('--sam-checkpoint', default=None,
                   help='--method corrclip: SAM weights (default: a small random SAM)')
    p.add_argument('--sam-type', default='vit_h', help='--method corrclip: SAM model type')
    p.add_argument('--pretrained', default=None, help='weights file or tag (default random)')
    p.add_argument('--vocab', choices=('ade20k', 'toy'), default=None,
                   help='class names; default toy for the toy model, else ade20k')
    p.add_argument('--classes', type=int, default=150, help='ADE20K classes (image modes)')
    p.add_argument('--size', type=int, default=None,
                   help='square image side (image mode, default 448; --train crop, 512)')
    p.add_argument('--batch', type=int, default=2, help='images per training step (--train)')
    p.add_argument('--dtypes', nargs='+', choices=DTYPES, default=['fp32', 'bf16'],
                   help='precisions of --train (bf16/fp16: autocast around forward and loss)')
    p.add_argument('--crop', type=int, default=224)
    p.add_argument('--stride', type=int, default=112)
    p.add_argument('--dtype', choices=DTYPES, default='bf16',
                   help="the segmentor's precision; float32 is always measured too")
    p.add_argument('--window-batch', type=int, default=8, help="the segmentor's (default 8)")
    p.add_argument('--images', type=int, default=1, help='toy scenes per timed run')
    p.add_argument('--repeat', type=int, default=3, help='timed runs after one warm-up')
    p.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    p.add_argument('--gemm-size', type=int, default=2048)
    p.add_argument('--memory-sizes', type=lambda s: [parse_size(v) for v in s.split(',')],
                   default=[(1024, 512), (2048, 1024)], help='e.g. 1024x512,2048x1024')
    p.add_argument('--memory-batches', type=lambda s: [int(v) for v in s.split(',')],
                   default=[1, 8, 16], help='window batches of --memory, e.g. 1,8,16')
    p.add_argument('--text-classes', type=int, default=150, help='ADE20K classes (--text)')
    p.add_argument('--vocab-sizes', type=int, nargs='+', default=[150, 847],
                   help='test vocabulary sizes of --infer (first N ADE20K-847 names)')
    p.add_argument('--templates', default='openai_imagenet', help='template set (--text)')
    p.add_argument('--textspan-models', nargs='+', default=['ViT-B-16', 'ViT-L-14'],
                   help='open_clip geometries of --textspan (random weights)')
    p.add_argument('--wait-idle', type=float, default=0.0, metavar='SECONDS',
                   help='before each worker, wait up to SECONDS for an idle machine')
    p.add_argument('--retries', type=int, default=0,
                   help='rerun a worker during which other processes used > 10%% of the CPUs')
    p.add_argument('--json', type=Path, default=None, help='write the results here')
    # internal: one measurement in this process (see spawn)
    p.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    p.add_argument('--worker-dir', type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument('--worker-out', type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument('--mem-size', type=parse_size, default=None, help=argparse.SUPPRESS)
    p.add_argument('--mem-path', default='ours', help=argparse.SUPPRESS)
    p.add_argument('--train-dtype', choices=DTYPES, default=None, help=argparse.SUPPRESS)
    p.add_argument('--deform-path', choices=DEFORM_PATHS, default=None, help=argparse.SUPPRESS)
    p.add_argument('--textspan-model', default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.size is None:
        args.size = (TRAIN_SIZES.get(args.train, 512) if args.train else
                     640 if args.infer else 512 if args.deform_attn else 448)
    for spec in (args.train, args.infer):
        try:
            if spec:
                train_config_path(spec)
        except ValueError as e:
            p.error(str(e))
    if args.train or args.deform_attn:
        if 'fp16' in args.dtypes and args.device != 'cuda':
            p.error('--dtypes fp16 is CUDA autocast; use --device cuda, or bf16 on the CPU')
        args.dtypes = list(dict.fromkeys(args.dtypes))
    if args.vocab is None:
        toy = str(args.model).endswith('.json') and Path(args.model).resolve() == TOY_CONFIG
        args.vocab = 'toy' if toy else 'ade20k'
    if args.dtype == 'fp16' and args.device != 'cuda':
        p.error("--dtype fp16 is CUDA autocast; use --device cuda, or --dtype bf16 on the CPU")
    if min(args.size, args.crop, args.stride, args.repeat, args.images, args.window_batch,
           args.batch) < 1:
        p.error('--size, --crop, --stride, --repeat, --images, --window-batch, --batch must be '
                '>= 1')
    args.argv = [a for a in argv if a not in ('--memory', '--text', '--deform-attn',
                                              '--textspan')]
    return args


def run_worker(args: argparse.Namespace) -> None:
    set_threads(args)
    name = args.worker
    if name == 'memory':
        out = worker_memory(args)
    elif name == 'text':
        out = worker_text(args, args.worker_dir)
    elif name == 'train':
        out = worker_train(args)
    elif name == 'infer':
        out = worker_infer(args)
    elif name == 'deform_attn':
        out = worker_deform_attn(args)
    elif name == 'corrclip':
        out = worker_corrclip(args, args.worker_dir)
    elif name == 'textspan':
        out = worker_textspan(args)
    else:
        out = worker_image(args, name, args.worker_dir)
    args.worker_out.write_text(json.dumps(out))


def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        logging.basicConfig(level=logging.WARNING)
        run_worker(args)
        return None
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    with tempfile.TemporaryDirectory(prefix='denseclip-bench-') as tmp:
        out_dir = Path(tmp)
        if args.train:
            result = run_train(args, out_dir)
        elif args.infer:
            result = run_infer(args, out_dir)
        elif args.deform_attn:
            result = run_deform_attn(args, out_dir)
        elif args.textspan:
            result = run_textspan(args, out_dir)
        elif args.text:
            result = dict(text=spawn(args, out_dir, 'text'))
        elif args.memory:
            result = run_memory(args, out_dir)
        elif args.method == 'corrclip':
            result = run_corrclip(args, out_dir)
        else:
            result = run_image(args, out_dir)
    config = {k: v for k, v in vars(args).items() if k not in (
        'argv', 'worker', 'worker_dir', 'worker_out', 'mem_size', 'mem_path', 'train_dtype',
        'deform_path', 'textspan_model', 'json')}
    result = dict(command=' '.join(['python', 'tools/benchmark.py', *map(shlex.quote, argv)]),
                  config=json.loads(json.dumps(config, default=str)), environment=environment(),
                  **result)
    logger.info('\n%s\n', report(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
        logger.info('wrote %s', args.json)
    return result


if __name__ == '__main__':
    main()
