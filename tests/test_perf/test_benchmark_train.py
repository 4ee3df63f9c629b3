"""tools/benchmark.py --train: one training step of a tiny DenseCLIP, fp32 and bf16 on the CPU;
--deform-attn: both deformable-attention paths on tiny maps.

The structure of the result and that the step trains (the optimizer moves the trainable weights,
not the frozen text encoder's); no timing is asserted (the benchmark reports the numbers).
"""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = ROOT / 'tools' / 'benchmark.py'
NAMES = ['wall', 'car', 'traffic light']
# The tiny open_clip RN of tests/test_heads/test_denseclip.py
CLIP = dict(embed_dim=32, quick_gelu=True,
            text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2),
            vision_cfg=dict(image_size=64, layers=(1, 1, 1, 1), width=8, head_width=8))


def load_benchmark():
    spec = importlib.util.spec_from_file_location('benchmark', BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_config(tmp_path: Path) -> Path:
    """A DenseCLIP RN config as the ADE20K one (SyncBN, pretrained tag, its optim_wrapper)."""
    clip_json = tmp_path / 'clip.json'
    clip_json.write_text(json.dumps(CLIP))
    K = len(NAMES)
    norm_cfg = dict(type='SyncBN', requires_grad=True)
    ce = dict(type='CrossEntropyLoss', use_sigmoid=False)
    model = dict(
        type='OpenVocabEncoderDecoder',
        backbone=dict(type='CLIPResNetWithAttention', model=str(clip_json), pretrained='openai',
                      input_resolution=64),
        vocabulary=NAMES, text_encoder=dict(context_length=13), prompt=dict(type='ContextPrompt'),
        decode_head=dict(
            type='DenseCLIPHead', score_concat_index=3,
            context_decoder=dict(type='ContextDecoder', transformer_width=16,
                                 transformer_heads=2, transformer_layers=2, visual_dim=32),
            neck=dict(type='FPN', in_channels=[32, 64, 128, 256 + K], out_channels=16,
                      num_outs=4),
            decode_head=dict(type='FPNHead', in_channels=[16] * 4, in_index=[0, 1, 2, 3],
                             feature_strides=[4, 8, 16, 32], channels=16, num_classes=K,
                             norm_cfg=norm_cfg, align_corners=False,
                             loss_decode=dict(ce, loss_weight=1.0)),
            identity_head=dict(type='IdentityHead', loss_decode=dict(ce, loss_weight=0.4))),
        slide_crop=64, slide_stride=43, logit_scale=1.0)
    optim_wrapper = dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
        paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1),
                                        'norm': dict(decay_mult=0.0)}),
        constructor='TrainableOptimWrapperConstructor')
    path = tmp_path / 'tiny_denseclip.py'
    path.write_text(f'model = {model!r}\noptim_wrapper = {optim_wrapper!r}\n')
    return path


@pytest.fixture(scope='module')
def bench():
    return load_benchmark()


def test_train_config_is_local_and_single_process(bench, tmp_path):
    cfg = bench.train_config(tiny_config(tmp_path))
    assert cfg.model.backbone.pretrained is None  # no download
    assert cfg.model.decode_head.decode_head.norm_cfg.type == 'BN'
    assert 'SyncBN' not in cfg.pretty_text
    assert bench.train_config_path('denseclip') == (
        ROOT / 'configs/denseclip/denseclip_r50_ade20k-512x512.py')
    with pytest.raises(ValueError, match='neither a method'):
        bench.train_config_path('no-such-method')


def test_measure_train_steps_the_trainable_weights_only(bench, tmp_path):
    cfg = bench.train_config(tiny_config(tmp_path))
    model, optim, images, samples = bench.train_setup(cfg, size=64, batch=2)
    assert images.shape == (2, 3, 64, 64) and len(samples) == 2
    labels = torch.stack([s.gt_sem_seg.data for s in samples])
    assert labels.shape == (2, 1, 64, 64) and 0 <= labels.min() and labels.max() < len(NAMES)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n for n in dict(model.named_parameters()) if n.startswith('text_encoder.')}
    assert frozen and not frozen & trainable

    for dtype in ('fp32', 'bf16'):  # one model, stepped in fp32 and then under bf16 autocast
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        r = bench.measure_train(model, optim, images, samples, dtype=dtype, repeat=1)

        assert r['dtype'] == dtype and (r['batch'], r['size'], r['repeat']) == (2, 64, 1)
        assert r['num_classes'] == len(NAMES) and len(r['losses']) == 2  # warm-up + 1 timed
        values = [r['seconds_per_iter'], r['first_step_seconds'], *r['seconds_runs'],
                  *r['losses']]
        assert all(v > 0 and math.isfinite(v) for v in values), values
        assert r['peak_delta_mib'] == r['rss_peak_delta_mib'] >= 0
        assert r['first_step_peak_delta_mib'] >= 0 and r['rss_peak_mib'] > 0
        assert 0 < r['params_trainable'] == r['params_in_optimizer'] < r['params_total']
        assert r['params_trainable'] == sum(dict(model.named_parameters())[n].numel()
                                            for n in trainable)
        assert r['optimizer_state_mib'] > 0  # AdamW's exp_avg and exp_avg_sq
        # the optimizer stepped: head, backbone and the learned contexts (through the frozen
        # text encoder) moved; nothing frozen did
        moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
        assert moved <= trainable and not moved & frozen
        for part in ('decode_head.', 'backbone.', 'prompt.'):
            assert any(n.startswith(part) for n in moved), (dtype, part)


def test_train_mode_cli_in_process(bench, tmp_path, monkeypatch, caplog):
    """main() as the CLI runs it, with each worker run here instead of in a subprocess."""
    def spawn(args, out_dir, name, *extra):
        worker = bench.parse_args([*args.argv, *extra, '--worker', name])
        assert worker.train == args.train and worker.size == 64 and worker.batch == 2
        return dict(bench.worker_train(worker), other_load=0.0, attempts=1)

    monkeypatch.setattr(bench, 'spawn', spawn)
    out = tmp_path / 'out.json'
    argv = ['--train', str(tiny_config(tmp_path)), '--size', '64', '--repeat', '1',
            '--dtypes', 'bf16', '--json', str(out)]
    with caplog.at_level('INFO', logger='benchmark'):
        result = bench.main(argv)
    assert json.loads(out.read_text())['train'] == result['train']
    rows = result['train']['rows']
    assert list(rows) == ['bf16'] and rows['bf16']['speedup_vs_fp32'] is None
    assert rows['bf16']['batch'] == 2 and rows['bf16']['losses'][-1] > 0
    assert result['command'] == 'python tools/benchmark.py ' + ' '.join(argv)
    assert '| dtype | s/iter | speed vs fp32 | peak RSS delta MiB |' in caplog.text
    assert bench.parse_args(['--train', 'denseclip']).size == 512  # the method's crop
    assert bench.parse_args([]).size == 448
    with pytest.raises(SystemExit):
        bench.parse_args(['--train', 'denseclip', '--dtypes', 'fp16'])  # CUDA only


def test_deform_attn_mode_in_process(bench, tmp_path, monkeypatch, caplog):
    """Both paths measured on the same inputs (their outputs agree), ours' speed over mmcv's
    is the ratio of the two timings, and the table is printed."""
    def spawn(args, out_dir, name, *extra):
        worker = bench.parse_args([*args.argv, *extra, '--worker', name])
        return dict(bench.worker_deform_attn(worker), other_load=0.0, attempts=1)

    monkeypatch.setattr(bench, 'spawn', spawn)
    argv = ['--deform-attn', '--size', '64', '--batch', '1', '--repeat', '1', '--dtypes', 'fp32']
    with caplog.at_level('INFO', logger='benchmark'):
        result = bench.main(argv)
    ref, ours = result['deform_attn']
    assert (ref['path'], ours['path']) == ('mmcv_pytorch', 'denseclip_compat')
    assert ref['shapes'] == [(8, 8), (4, 4), (2, 2)] and ref['queries'] == 84
    assert ours['output_sum'] == pytest.approx(ref['output_sum'], rel=1e-4)
    for phase in ('forward', 'forward_backward'):
        assert ours[f'{phase}_speedup'] == pytest.approx(
            ref[f'{phase}_seconds'] / ours[f'{phase}_seconds'])
    assert '| path | dtype | forward s | vs mmcv |' in caplog.text
    assert bench.parse_args(['--deform-attn']).size == 512
    assert bench.parse_args(['--train', 'mta_clip']).size == 512
