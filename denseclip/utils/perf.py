"""Measuring helpers of ``tools/benchmark.py``: wall time, peak memory, GEMM rate, FLOPs, and
the load other processes put on the machine meanwhile."""
from __future__ import annotations

import ctypes
import gc
import math
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

MIB = 2 ** 20
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def rss_mib(field: str = 'VmRSS') -> float | None:
    """``VmRSS`` (current) or ``VmHWM`` (high-water mark) of this process in MiB; None off
    Linux."""
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current resident size (Linux >= 4.0); False if not possible."""
    try:
        Path('/proc/self/clear_refs').write_text('5')
        return True
    except OSError:
        return False


def ru_maxrss_mib() -> float:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in MiB: the lifetime peak of this process.

    After ``exec`` Linux starts it at the parent's peak, so it bounds a child's own peak only
    from above; :class:`MemoryMeter` prefers ``VmHWM``.
    """
    scale = 1 if sys.platform == 'darwin' else 1024  # bytes on macOS, kB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MIB


def release_free_memory() -> bool:
    """Return the heap's freed pages to the OS (glibc ``malloc_trim``); False where unavailable.

    glibc keeps freed memory resident and serves later allocations from it, so after a large
    model is freed, a new allocation of the same size does not raise the resident size at all
    (seen: a 64 MiB tensor after an RN101 forward added 0 MiB to VmHWM).
    """
    gc.collect()
    try:
        libc = ctypes.CDLL('libc.so.6')
    except OSError:
        return False
    libc.malloc_trim(0)
    return True


class MemoryMeter:
    """Peak memory of what runs between :meth:`start` and :meth:`stop`.

    CPU: the resident high-water mark, reset at ``start`` where the kernel allows it
    (``/proc/self/clear_refs``), reported with the resident size at ``start``; elsewhere the
    lifetime ``ru_maxrss``. CUDA: ``torch.cuda.max_memory_allocated`` over the allocation at
    ``start``.
    """

    def __init__(self, device: str = 'cpu') -> None:
        self.device = device
        self.reset = False
        self.base: float | None = None
        self.cuda_base = 0.0

    def start(self) -> None:
        release_free_memory()  # else freed-but-resident pages hide new allocations
        self.reset = reset_peak_rss()
        self.base = rss_mib('VmRSS')
        if self.device == 'cuda':
            torch.cuda.reset_peak_memory_stats()
            self.cuda_base = torch.cuda.memory_allocated() / MIB

    def stop(self) -> dict:
        """``rss_base_mib``, ``rss_peak_mib``, ``rss_peak_delta_mib``, ``ru_maxrss_mib``,
        ``peak_source`` (and ``cuda_peak_delta_mib`` on CUDA)."""
        out = dict(rss_base_mib=self.base, ru_maxrss_mib=ru_maxrss_mib())
        peak = rss_mib('VmHWM') if self.reset else None
        if peak is None:
            peak = out['ru_maxrss_mib']
        out.update(rss_peak_mib=peak, rss_peak_delta_mib=peak - (self.base or 0.0),
                   peak_source='VmHWM after clear_refs' if self.reset else 'ru_maxrss')
        if self.device == 'cuda':
            out['cuda_peak_delta_mib'] = torch.cuda.max_memory_allocated() / MIB - self.cuda_base
        return out


def synchronize(device: str) -> None:
    """Wait for queued CUDA work; a no-op on the CPU."""
    if device == 'cuda':
        torch.cuda.synchronize()


def time_runs(fn: Callable[[], object], repeat: int, device: str = 'cpu') -> list[float]:
    """Wall seconds of ``repeat`` calls of ``fn``, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def gemm_gflops(dtype: str, device: str = 'cpu', n: int = 2048, repeat: int = 5) -> float:
    """Best-of-``repeat`` GFLOP/s of an ``n x n @ n x n`` matmul (2 n^3 FLOPs) in ``dtype``
    (``'fp32'``, ``'bf16'``, ``'fp16'``): the machine's attainable matmul rate."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, DTYPES[dtype])
    b = torch.randn(n, n, generator=gen).to(device, DTYPES[dtype])
    best = min(time_runs(lambda: a @ b, repeat, device))
    return 2 * n ** 3 / best / 1e9


def _fused_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None,
                           **kwargs) -> int:
    """q k^T and attn v of one fused attention call: ``2 L S E + 2 L S Ev`` per batch entry and
    head, for queries ``(..., L, E)``, keys ``(..., S, E)`` and an output ``(..., L, Ev)``.

    The output (the op's first result) gives the batch and heads after broadcasting and
    grouped-query expansion. Softmax, scale and mask are not counted, as in the counter's own
    attention formulas.
    """
    out = out_shape if isinstance(out_shape, torch.Size) else out_shape[0]
    return 2 * math.prod(out[:-1]) * key_shape[-2] * (query_shape[-1] + out[-1])


# Fused attention kernels that ``scaled_dot_product_attention`` dispatches to, for which
# ``FlopCounterMode`` may have no formula (it counts the CUDA flash, efficient and cuDNN ones):
# each would otherwise add zero FLOPs. On the CPU, SDPA runs the first for any dtype and mask
# (its math fallback, for shapes the fused kernel rejects, runs counted ``bmm`` calls).
FUSED_ATTENTION_OPS = ('_scaled_dot_product_flash_attention_for_cpu',  # CPU
                       '_scaled_dot_product_fused_attention_overrideable',  # XPU, PrivateUse1
                       '_scaled_dot_product_attention_math_for_mps')  # MPS


def fused_attention_formulas() -> dict:
    """``FlopCounterMode`` ``custom_mapping`` for :data:`FUSED_ATTENTION_OPS` that this torch
    has.

    A mapping replaces the counter's own formula for the same op rather than adding to it, and
    a call counted at one of these ops runs its kernel out of the counter's sight, so where a
    torch already counts one of them, or SDPA takes an unfused path, nothing is counted twice.
    """
    ops = (getattr(torch.ops.aten, name, None) for name in FUSED_ATTENTION_OPS)
    return {op: _fused_attention_flops for op in ops if op is not None}


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matmuls, convolutions and attentions ``fn`` runs (``FlopCounterMode``, with
    :func:`fused_attention_formulas` for the attention kernels it has no formula for).

    ``nn.MultiheadAttention``'s fused inference fast path (``_native_multi_head_attention``,
    ``_transformer_encoder_layer_fwd``) has no FLOP formula either, so it is turned off while
    counting: the unfused ops it stands for do the same FLOPs.
    """
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.inference_mode(), FlopCounterMode(
                display=False, custom_mapping=fused_attention_formulas()) as counter:
            fn()
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops()


def cpu_busy_seconds() -> float | None:
    """Non-idle CPU seconds of the whole machine since boot (``/proc/stat``); None off Linux."""
    try:
        fields = [int(v) for v in Path('/proc/stat').read_text().split('\n', 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    return busy / os.sysconf('SC_CLK_TCK')


def children_cpu_seconds() -> float:
    """CPU seconds used by this process's finished (waited-for) children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_for_idle(max_load: float = 0.1, timeout: float = 600.0, window: float = 3.0) -> float:
    """Wait until the machine's CPUs are busy less than ``max_load`` of a ``window`` (others'
    work: this process sleeps meanwhile), or ``timeout`` seconds; returns the last load seen."""
    deadline = time.monotonic() + timeout
    while True:
        before = cpu_busy_seconds()
        if before is None:
            return 0.0
        time.sleep(window)
        busy = cpu_busy_seconds() - before
        # /proc/stat counts in 10 ms ticks: over a short window the ratio can overshoot 1.
        load = min(busy / (window * (os.cpu_count() or 1)), 1.0)
        if load < max_load or time.monotonic() > deadline:
            return load
