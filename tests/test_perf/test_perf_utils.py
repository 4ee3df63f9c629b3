"""The measuring helpers behind tools/benchmark.py: FLOP counts by hand, memory, timing."""
from __future__ import annotations

import sys
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from denseclip.utils.perf import (FUSED_ATTENTION_OPS, MemoryMeter, count_flops,
                                  cpu_busy_seconds, gemm_gflops, time_runs, wait_for_idle)


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


def attention_flops_by_hand(batch_heads, L, S, E, Ev):
    return batch_heads * (2 * L * S * E + 2 * L * S * Ev)  # q k^T, then attn v


@pytest.mark.parametrize('case', ['plain', 'mask', 'bf16', 'no batch', 'grouped heads',
                                  'value width (math path)'])
def test_count_flops_of_scaled_dot_product_attention_by_hand(case):
    """SDPA on the CPU runs a fused kernel the counter may lack a formula for (or, for a value
    width unlike the query's, its math path of bmm's): each counted once, whichever runs."""
    B, H, L, S, E = 2, 4, 5, 7, 6
    q, k, v = torch.randn(B, H, L, E), torch.randn(B, H, S, E), torch.randn(B, H, S, E)
    kwargs, Ev, batch_heads = {}, E, B * H
    if case == 'mask':
        kwargs['attn_mask'] = torch.randn(L, S)
    elif case == 'bf16':
        q, k, v = q.bfloat16(), k.bfloat16(), v.bfloat16()
    elif case == 'no batch':
        q, k, v, batch_heads = q[0], k[0], v[0], H
    elif case == 'grouped heads':  # 4 query heads share 2 key/value heads
        k, v, kwargs['enable_gqa'] = k[:, :2], v[:, :2], True
    elif case == 'value width (math path)':
        v, Ev = torch.randn(B, H, S, 3), 3
    try:
        got = count_flops(lambda: F.scaled_dot_product_attention(q, k, v, **kwargs))
    except TypeError:  # enable_gqa came with torch 2.5
        pytest.skip(f'this torch has no {sorted(kwargs)} in scaled_dot_product_attention')
    assert got == attention_flops_by_hand(batch_heads, L, S, E, Ev)


@pytest.mark.parametrize('name', FUSED_ATTENTION_OPS)
def test_count_flops_of_each_fused_attention_kernel_by_hand(name):
    """The kernels of other devices (XPU, MPS), called on meta tensors: their shapes, no data."""
    op = getattr(torch.ops.aten, name, None)
    if op is None:
        pytest.skip(f'this torch has no aten.{name}')
    B, H, L, S, E = 2, 4, 5, 7, 6
    q, k, v = (torch.empty(B, H, n, E, device='meta') for n in (L, S, S))
    assert count_flops(lambda: op(q, k, v)) == attention_flops_by_hand(B * H, L, S, E, E)


def test_count_flops_does_not_double_count_where_the_counter_has_the_cpu_kernel(monkeypatch):
    """A torch whose counter has its own formula for the CPU kernel (as upstream proposes)."""
    from torch.utils import flop_counter
    monkeypatch.setitem(flop_counter.flop_registry,
                        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu,
                        flop_counter.sdpa_flop)
    B, H, L, S, E = 2, 4, 5, 7, 6
    q, k, v = torch.randn(B, H, L, E), torch.randn(B, H, S, E), torch.randn(B, H, S, E)
    got = count_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    assert got == attention_flops_by_hand(B * H, L, S, E, E)


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
