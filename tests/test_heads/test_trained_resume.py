"""Trained methods through tools/train.py on the toy world (CPU, a few iterations): a run
SIGKILLed after a checkpoint and resumed with ``--resume`` ends with the uninterrupted run's
weights bit for bit (DenseCLIP, CAT-Seg), and the checkpoint holds what each method trains:
DenseCLIP's learned text side over a frozen text tower, CAT-Seg's q/v projections of both CLIP
towers and nothing else of CLIP."""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS
from safetensors.torch import load_file

from denseclip.engine import latest_checkpoint, mmengine_safe_globals
from denseclip.toy import TOY_WEIGHTS

ROOT = Path(__file__).resolve().parents[2]
MAX_ITERS = 6
# Each method's toy config and its schedule squeezed into 6 iterations, so that a resume from
# iteration 2 or 4 has to restore the schedulers mid-course.
METHODS = {
    # DenseCLIP's warmup (100 iterations from 1e-6) and poly decay (to 3000): warmup over
    # iterations 0-2 from 0.1, decay over 3-5.
    'denseclip': ('denseclip/denseclip_toy-vit-p16_toy-open-vocab.py', [
        'param_scheduler.0.start_factor=0.1', 'param_scheduler.0.end=3',
        'param_scheduler.1.begin=3', f'param_scheduler.1.end={MAX_ITERS}']),
    # CAT-Seg's cosine over 1500 iterations: over 6.
    'catseg': ('catseg/catseg_toy-vit-p16_toy-open-vocab.py', [
        f'param_scheduler.0.T_max={MAX_ITERS}', f'param_scheduler.0.end={MAX_ITERS}']),
}
CONTEXT_LENGTH = 13  # the text encoder's context_length (configs/_base_/models/denseclip_r50.py)


@HOOKS.register_module(force=True)
class TrainedRecordStartHook(Hook):
    """Save the iteration, weights and optimizer state a run starts training with."""

    def __init__(self, out):
        self.out = out

    def before_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        torch.save(dict(iter=runner.iter, state_dict=model.state_dict(),
                        optimizer=runner.optim_wrapper.state_dict()), self.out)


def tiny_options(method: str, data_root: Path, name: str) -> list[str]:
    """``--cfg-options`` for 6 iterations of batch 2 on 8 generated scenes, no validation."""
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        'train_dataloader.dataset.generate.num_images=8',
        'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        f'train_cfg.max_iters={MAX_ITERS}',
        'train_cfg.val_interval=1000',
        # No ValLoop at all: it would build the 100-scene evaluation split under data/.
        'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.checkpoint.max_keep_ckpts=-1',
        'default_hooks.logger.interval=1',
        'log_processor.window_size=1',
        *METHODS[method][1],
        'randomness.seed=0',
        # Dropout and drop-path stay on: the resumed run must draw the masks the uninterrupted
        # one drew (RNGStateHook; mmengine alone reseeds on resume and they differ from the
        # first iteration after it).
        f'visualizer.name={method}_training_{name}',  # one Visualizer instance per run
    ]


def load(path):
    with mmengine_safe_globals():
        return torch.load(path, map_location='cpu', weights_only=True)


def train_tool(*argv: str) -> None:
    """tools/train.py's main() in this process, on one thread like the subprocess."""
    spec = importlib.util.spec_from_file_location('train_tool', ROOT / 'tools' / 'train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as OMP_NUM_THREADS=1 in the subprocess: bit-identical kernels
    try:
        module.main(list(argv))
    finally:
        torch.set_num_threads(threads)


def recording_config(config: Path, directory: Path) -> Path:
    path = directory / 'record.py'
    path.write_text(f"_base_ = [{str(config)!r}]\n"
                    "custom_hooks = [dict(type='TrainedRecordStartHook', out='')]\n")
    return path


def assert_same(a, b, where):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f'{where}[{key!r}]')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, f'{where}: {a!r} != {b!r}'


def train_runs(method: str, tmp: Path) -> dict:
    """An uninterrupted reference run, and a run SIGKILLed after its first checkpoint and
    resumed in the same work dir. All runs share one generated training split."""
    config = ROOT / 'configs' / METHODS[method][0]
    data_root = tmp / 'train'
    record = recording_config(config, tmp)
    timings = {}

    # 1. Reference: uninterrupted, in this process.
    ref_dir, ref_start = tmp / 'reference', tmp / 'reference_start.pt'
    start = time.time()
    train_tool(str(record), '--work-dir', str(ref_dir), '--cfg-options',
               *tiny_options(method, data_root, 'reference'), f'custom_hooks.0.out={ref_start}')
    timings['reference'] = time.time() - start

    # 2. The same run in a subprocess, SIGKILLed once iter_2.pth is on disk.
    work_dir = tmp / 'killed'
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', HF_HUB_OFFLINE='1',
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    stderr = tmp / 'killed.stderr'  # a file, not a pipe nobody drains while polling
    start = time.time()
    with open(stderr, 'wb') as err:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / 'tools' / 'train.py'), str(config), '--work-dir',
             str(work_dir), '--cfg-options', *tiny_options(method, data_root, 'killed')],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.time() + 240
        while not (work_dir / 'iter_2.pth').exists():
            assert proc.poll() is None, stderr.read_text()[-3000:]
            assert time.time() < deadline, 'no checkpoint appeared'
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    timings['killed'] = time.time() - start
    assert proc.returncode == -signal.SIGKILL
    # Every checkpoint file present is complete (a save in flight is only a .tmp).
    for path in work_dir.glob('iter_*.pth'):
        assert load(path)['meta']['iter'] == int(path.stem.split('_')[1])
    resume_from = latest_checkpoint(work_dir)
    (work_dir / 'iter_99.pth.tmp').write_bytes(b'half a checkpoint')  # a save killed midway

    # 3. Resume in the same work dir, in this process.
    resumed_start = tmp / 'resumed_start.pt'
    start = time.time()
    train_tool(str(record), '--work-dir', str(work_dir), '--resume', '--cfg-options',
               *tiny_options(method, data_root, 'resumed'), f'custom_hooks.0.out={resumed_start}')
    timings['resumed'] = time.time() - start
    print(method, 'seconds per run:', {k: round(v, 1) for k, v in timings.items()})
    return dict(ref_dir=ref_dir, ref_start=torch.load(ref_start, weights_only=True),
                work_dir=work_dir, resume_from=resume_from,
                resumed_start=torch.load(resumed_start, weights_only=True))


@pytest.fixture(scope='module')
def denseclip_runs(tmp_path_factory):
    return train_runs('denseclip', tmp_path_factory.mktemp('denseclip_training'))


@pytest.fixture(scope='module')
def catseg_runs(tmp_path_factory):
    return train_runs('catseg', tmp_path_factory.mktemp('catseg_training'))


@pytest.mark.parametrize('method', list(METHODS))
def test_sigkill_then_resume_continues_exactly(method, request):
    runs = request.getfixturevalue(f'{method}_runs')
    work_dir, ref_dir = runs['work_dir'], runs['ref_dir']
    saved = load(runs['resume_from'])
    resumed_at = saved['meta']['iter']
    print(f'killed after iteration {resumed_at} was checkpointed')
    assert resumed_at in (2, 4)
    assert not list(work_dir.glob('*.tmp'))  # the resumed run removed the partial save

    # The resumed run started from the checkpoint: its iteration, weights and AdamW moments.
    started = runs['resumed_start']
    assert started['iter'] == resumed_at
    assert_same(started['state_dict'], saved['state_dict'], 'state_dict')
    assert_same(started['optimizer'], saved['optimizer'], 'optimizer')
    assert started['optimizer']['state'], 'AdamW moments were restored'

    # Every checkpoint of the killed-then-resumed run equals the uninterrupted run's: weights,
    # optimizer and scheduler states, bit for bit: CPU, one thread in every run, no worker
    # processes, fixed seed; dropout, drop-path, random resizes, crops, flips and photometric
    # distortions all on and replayed exactly.
    for it in range(2, MAX_ITERS + 1, 2):
        reference = load(ref_dir / f'iter_{it}.pth')
        ckpt = load(work_dir / f'iter_{it}.pth')
        assert ckpt['meta']['iter'] == reference['meta']['iter'] == it
        assert_same(ckpt['state_dict'], reference['state_dict'], f'iter_{it} state_dict')
        assert_same(ckpt['optimizer'], reference['optimizer'], f'iter_{it} optimizer')
        assert_same(ckpt['param_schedulers'], reference['param_schedulers'],
                    f'iter_{it} param_schedulers')
    assert latest_checkpoint(work_dir) == str(work_dir / f'iter_{MAX_ITERS}.pth')


def test_denseclip_checkpoint_holds_the_learned_text_side(denseclip_runs):
    runs = denseclip_runs
    path = runs['ref_dir'] / f'iter_{MAX_ITERS}.pth'
    with mmengine_safe_globals():  # what tools/test.py and the resume use
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    assert checkpoint['meta']['iter'] == MAX_ITERS
    state = checkpoint['state_dict']
    initial = runs['ref_start']['state_dict']
    assert runs['ref_start']['iter'] == 0
    assert state.keys() == initial.keys()

    # The learned text side: contexts, gamma and the context decoder all trained.
    learned = ['prompt.contexts', 'decode_head.gamma'] + [
        k for k in state if k.startswith('decode_head.context_decoder.')]
    assert 'prompt.contexts' in state and 'decode_head.gamma' in state
    assert len(learned) > 2
    for key in learned:
        assert state[key].dtype == torch.float32, key
        assert not torch.equal(state[key], initial[key]), f'{key} did not train'
    assert state['prompt.contexts'].shape == (1, 8, 64)  # one set of 8 tokens, text width 64
    assert state['decode_head.gamma'].shape == (128,)  # the toy CLIP's embedding width

    # The text tower is frozen: exactly the toy CLIP's weights (fp16 on disk, fp32 here).
    toy = load_file(str(TOY_WEIGHTS))
    text = {k[len('text_encoder.'):]: v for k, v in state.items()
            if k.startswith('text_encoder.')}
    expected = {k: v for k, v in toy.items()
                if k.startswith(('transformer.', 'token_embedding.', 'ln_final.'))
                or k in ('positional_embedding', 'text_projection')}
    expected['positional_embedding'] = expected['positional_embedding'][:CONTEXT_LENGTH]
    assert text.keys() == expected.keys()
    for key, value in text.items():
        assert value.dtype == torch.float32, key
        assert torch.equal(value, expected[key].float()), f'text_encoder.{key} moved'
        assert torch.equal(value, initial[f'text_encoder.{key}']), key


def test_catseg_checkpoint_moves_only_the_q_and_v_projections_of_clip(catseg_runs):
    state = load(catseg_runs['ref_dir'] / f'iter_{MAX_ITERS}.pth')['state_dict']
    initial = catseg_runs['ref_start']['state_dict']
    assert state.keys() == initial.keys()
    clip = [k for k in state if k.startswith(('backbone.', 'text_encoder.'))]
    moved = {k for k in clip if not torch.equal(state[k], initial[k])}
    # Every q/v projection of both towers trained, except the last image block's q, which the
    # dense last block never reads; k, the shared in_proj_bias, out_proj, norms, MLPs and
    # embeddings are exactly the toy CLIP's.
    expected = {k for k in clip if k.endswith(('.q_proj_weight', '.v_proj_weight'))}
    expected.discard('backbone.visual.transformer.resblocks.3.attn.q_proj_weight')
    assert moved == expected and len(expected) == 4 + 3 + 3 * 2
    toy = load_file(str(TOY_WEIGHTS))
    k_proj = toy['transformer.resblocks.0.attn.in_proj_weight'].float().chunk(3)[1]
    assert torch.equal(state['text_encoder.transformer.resblocks.0.attn.k_proj_weight'], k_proj)
    # The head trained, all but the Swin key biases: a bias added to every key shifts a query's
    # scores by one constant, which the softmax ignores, so their gradient is zero (up to
    # rounding).
    still = {k for k in state if k.startswith('decode_head.') and torch.equal(state[k], initial[k])}
    assert still <= {k for k in state if k.endswith('.attn.k.bias')} and len(still) < len(state)
