"""Every fast path of the segmentor against the slow one, and tools/benchmark.py end to end.

Speed is not tested here (tools/benchmark.py measures it); correctness is, within stated
tolerances: float32 batching changes logits only in the last bits, bf16 autocast of the image
encoder moves cosine logits by well under 1e-2.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY_VIT, make_clip

import denseclip  # noqa: F401  (registration)
from denseclip.models.segmentors import OpenVocabSegmentor, slide_windows

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = ROOT / 'tools' / 'benchmark.py'
VOCAB = ['sky', ['person', 'pedestrian'], 'car', 'grass', 'road']


def load_benchmark():
    spec = importlib.util.spec_from_file_location('benchmark', BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def clip():
    return make_clip(TINY_VIT)


def make_segmentor(clip, **kwargs) -> OpenVocabSegmentor:
    backbone = dict(type='CLIPViT', model=clip, dense=dict(type='SCLIPAttention'),
                    pos_interp='scale_factor')
    kwargs = dict(dict(slide_crop=48, slide_stride=32), **kwargs)
    return OpenVocabSegmentor(backbone=backbone, vocabulary=VOCAB, **kwargs).eval()


def image(height: int = 96, width: int = 128, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('window_batch', [1, 2, 4, 5, 100])
@pytest.mark.parametrize('pad', [False, True])
def test_batched_canvas_equals_the_benchmarks_reference_loop(clip, window_batch, pad):
    # 70x101 with 40/24 windows: 3 x 4 = 12 windows (batches that do and do not divide 12),
    # 40 pixels wide: padded to 48 or cut to 32 for the 16-pixel patches.
    seg = make_segmentor(clip, slide_crop=40, slide_stride=24, window_batch=window_batch,
                         pad_to_patch=pad)
    x = image(70, 101)
    with torch.no_grad():
        want = load_benchmark().reference_slide(seg, x, 40, 24, pad)
    got = seg.inference(x, (70, 101))
    # float32, batch 1 vs batch b: the same math, matmul blocking may differ in the last bits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert got.dtype == torch.float32


def test_released_zero_padded_canvas_add_equals_the_slice_add(clip):
    seg = make_segmentor(clip)
    x = image(70, 101)
    bench = load_benchmark()
    with torch.no_grad():
        padded = bench.reference_slide(seg, x, 48, 32, False, canvas_add='pad')
        sliced = bench.reference_slide(seg, x, 48, 32, False, canvas_add='slice')
    assert torch.equal(padded, sliced)  # x + 0 == x


@pytest.mark.parametrize('dtype', ['fp32', 'bf16'])
def test_window_batch_does_not_change_the_result(clip, dtype):
    x = image()
    one = make_segmentor(clip, window_batch=1, dtype=dtype).inference(x, (96, 128))
    for batch in (3, 16):
        many = make_segmentor(clip, window_batch=batch, dtype=dtype).inference(x, (96, 128))
        if dtype == 'fp32':
            torch.testing.assert_close(many, one, rtol=1e-5, atol=1e-6)
        else:  # bf16 rounding differs with the matmul blocking: as far as bf16 is from fp32
            torch.testing.assert_close(many, one, rtol=0, atol=5e-3)


def test_bf16_encoder_stays_close_to_fp32(clip):
    x = image(seed=1)
    fp32 = make_segmentor(clip).inference(x, (96, 128))
    seg = make_segmentor(clip, dtype='bf16')
    seen = []
    hook = seg.backbone.blocks[0].mlp.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    bf16 = seg.inference(x, (96, 128))
    hook.remove()
    assert set(seen) == {torch.bfloat16}  # the encoder ran under autocast ...
    assert bf16.dtype == torch.float32  # ... merging and the output are float32
    # Cosine logits lie in [-1, 1]; bf16 keeps 8 bits of mantissa through 2 blocks.
    torch.testing.assert_close(bf16, fp32, rtol=0, atol=1e-2)
    labels = [seg.postprocess(logits[0])[1] for logits in (bf16, fp32)]
    assert (labels[0] == labels[1]).float().mean() >= 0.97


def test_bf16_weight_casts_are_kept_restored_and_renewed(clip):
    own = make_clip(TINY_VIT)  # changed below: not the shared fixture
    seg = make_segmentor(own, dtype='bf16')
    params = {name: (p, p.dtype) for name, p in seg.named_parameters()}
    x = image(seed=2)
    first = seg.inference(x, (96, 128))
    casts = seg._cast_cache[1]
    assert all(t.dtype == torch.bfloat16 for t in casts.values())
    assert torch.equal(seg.inference(x, (96, 128)), first) and seg._cast_cache[1] is casts
    # functional_call put every original float32 parameter back
    assert {n: (p, p.dtype) for n, p in seg.named_parameters()} == params
    fp32 = make_segmentor(own).inference(x, (96, 128))  # shares the CLIP: still float32
    torch.testing.assert_close(first, fp32, rtol=0, atol=1e-2)
    # loading image weights in place bumps their version counters: the casts are renewed
    image_tower = make_clip(TINY_VIT, seed=1).visual.state_dict()
    seg.backbone.visual.load_state_dict(image_tower)
    renewed = seg.inference(x, (96, 128))
    assert seg._cast_cache[1] is not casts
    same = make_clip(TINY_VIT)
    same.visual.load_state_dict(image_tower)
    assert torch.equal(renewed, make_segmentor(same, dtype='bf16').inference(x, (96, 128)))


def test_precision_setting_is_validated(clip):
    with pytest.raises(ValueError, match=r"dtype='bf32'.*\['bf16', 'fp16', 'fp32'\]"):
        make_segmentor(clip, dtype='bf32')
    seg = make_segmentor(clip, dtype='fp16')
    with pytest.raises(ValueError, match="fp16.*CUDA only.*'cpu'.*dtype='bf16'"):
        seg.inference(image(), (96, 128))


def run_benchmark(tmp_path: Path, *args: str) -> dict:
    config = tmp_path / 'tiny_vit.json'
    config.write_text(json.dumps(TINY_VIT))
    out = tmp_path / 'out.json'
    cmd = [sys.executable, str(BENCHMARK), '--model', str(config), '--size', '96', '--crop', '48',
           '--stride', '32', '--repeat', '1', '--classes', '5', '--gemm-size', '256',
           '--json', str(out), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_benchmark_image_mode_end_to_end(tmp_path):
    result = run_benchmark(tmp_path, '--dtype', 'bf16', '--window-batch', '4')
    paths = result['paths']
    assert set(paths) == {'reference', 'reference_slice', 'ours_fp32', 'ours_bf16'}
    assert paths['reference']['window_batch'] == 1 and paths['ours_fp32']['window_batch'] == 4
    for r in paths.values():
        assert r['seconds_per_image'] > 0 and r['speedup_vs_reference'] > 0
        assert r['speedup_vs_reference_slice'] > 0
        assert r['windows'] == 9 and r['num_queries'] == 5
        assert r['gflop_per_image'] == pytest.approx(9 * r['gflop_per_window'])
        assert r['gflop_per_window'] > 0 and 0 < r['fraction_of_gemm_peak']
        assert r['rss_peak_mib'] >= r['rss_base_mib'] > 0 and r['rss_peak_delta_mib'] >= 0
        assert 0 <= r['other_load'] <= 1 and r['attempts'] == 1
    assert result['gemm_gflops']['fp32'] > 0 and result['gemm_gflops']['bf16'] > 0
    same = result['agreement']['reference_slice_vs_reference']  # x + 0 == x
    assert same['logits_identical'] and same['labels_identical']
    fp32 = result['agreement']['ours_fp32_vs_reference']
    assert fp32['argmax_agreement_pct'] == 100 and fp32['labels_identical']
    assert fp32['max_abs_logit_diff'] < 1e-5
    bf16 = result['agreement']['ours_bf16_vs_ours_fp32']
    assert 90 <= bf16['argmax_agreement_pct'] <= 100 and bf16['max_abs_logit_diff'] < 1e-2
    assert result['config']['dtype'] == 'bf16' and result['environment']['cpu_count'] >= 1


def test_benchmark_memory_mode_end_to_end(tmp_path):
    result = run_benchmark(tmp_path, '--memory', '--dtype', 'fp32', '--memory-sizes', '160x96',
                           '--memory-batches', '2')
    rows = result['memory']
    assert [(r['width'], r['height'], r['path'], r['window_batch']) for r in rows] == [
        (160, 96, 'reference', 1), (160, 96, 'ours_fp32', 2)]
    assert [r['windows'] for r in rows] == [len(slide_windows(96, 160, 48, 32))] * 2 == [15] * 2
    for r in rows:
        assert r['rss_peak_delta_mib'] >= 0 and r['seconds'] > 0
        assert r['canvas_mib'] == pytest.approx(5 * r['height'] * r['width'] * 4 / 2 ** 20)


def test_benchmark_text_mode_end_to_end(tmp_path):
    text = run_benchmark(tmp_path, '--text', '--text-classes', '3')['text']
    assert text['prompts'] == 3 * 80 == text['classes'] * text['templates']
    assert text['context_length'] == 77 and 0 < text['mean_trimmed_length'] < 77
    assert text['max_abs_diff_trimmed_vs_full'] < 1e-5
    assert text['max_abs_diff_cache_vs_cold'] == 0
    assert min(text['seconds_full_context'], text['seconds_trimmed_cold'],
               text['seconds_cache']) > 0
