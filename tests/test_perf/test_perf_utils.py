"""The measuring helpers behind tools/benchmark.py: FLOP counts by hand, memory, timing."""
from __future__ import annotations

import sys
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from denseclip.utils.perf import (MemoryMeter, count_flops, cpu_busy_seconds, gemm_gflops,
                                  time_runs, wait_for_idle)


def test_count_flops_of_a_linear_by_hand():
    x, w = torch.randn(7, 5), torch.randn(3, 5)
    assert count_flops(lambda: F.linear(x, w)) == 2 * 7 * 3 * 5


def test_count_flops_sees_through_the_multihead_attention_fast_path():
    B, T, D = 2, 5, 8
    mha = nn.MultiheadAttention(D, num_heads=2, batch_first=True).eval()
    x = torch.randn(B, T, D)
    # in-projection, q k^T and attn v (2 T^2 D each), out-projection
    want = B * (2 * T * D * 3 * D + 2 * 2 * T * T * D + 2 * T * D * D)
    with torch.inference_mode():
        assert count_flops(lambda: mha(x, x, x, need_weights=False)) == want
    assert torch.backends.mha.get_fastpath_enabled()  # restored


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='VmHWM is Linux-only')
def test_memory_meter_sees_an_allocation_made_after_start():
    meter = MemoryMeter()
    meter.start()
    block = torch.ones(64 * 2 ** 18)  # 64 MiB, written so every page is resident
    out = meter.stop()
    del block
    assert out['peak_source'] == 'VmHWM after clear_refs'
    assert 60 <= out['rss_peak_delta_mib'] < 1024
    assert out['rss_peak_mib'] <= out['ru_maxrss_mib'] + 1


def test_time_runs_warms_up_once_then_times_each_call():
    calls = []
    times = time_runs(lambda: calls.append(1), repeat=3)
    assert len(calls) == 4 and len(times) == 3 and min(times) >= 0


def test_gemm_rate_is_positive():
    assert gemm_gflops('fp32', n=64, repeat=2) > 0


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='/proc/stat is Linux-only')
def test_machine_load_counts_this_process_busy_time():
    before = cpu_busy_seconds()
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:  # spin: at least ~0.3 CPU seconds of busy time
        pass
    assert cpu_busy_seconds() - before >= 0.25
    load = wait_for_idle(max_load=1.1, timeout=0, window=0.1)  # returns after one window
    assert 0 <= load <= 1
