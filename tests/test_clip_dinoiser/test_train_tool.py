"""tools/train.py and tools/dist_train.sh on tiny CLIP-DINOiser runs (subprocesses, CPU)."""
from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time

import torch
from clip_dinoiser_helpers import (ROOT, TINY_CLIP, logged_scalars, run, subprocess_env,
                                   train_command, write_config, write_images)

from denseclip.engine.checkpoint import latest_checkpoint, mmengine_safe_globals
from denseclip.models.refiners.clip_dinoiser import CLIPDINOiserRefiner

WIDTH = TINY_CLIP['vision_cfg']['width']


def load(path):
    with mmengine_safe_globals():
        return torch.load(path, map_location='cpu', weights_only=True)


def test_training_lowers_loss_and_exports_heads(tmp_path):
    # Overfit one batch: two 96x96 images, no flip or jitter, batch 2 -> the same batch each time.
    images = write_images(tmp_path / 'images', 2, (96, 96))
    config = write_config(
        tmp_path, images, img_size=96, max_iters=20, interval=10,
        dataset='color_jitter=0.0, flip_prob=0.0',
        extra="optim_wrapper = dict(optimizer=dict(lr=1e-3), "
              "paramwise_cfg=dict(custom_keys={'bkg_decoder': dict(lr_mult=10.0)}))\n")
    work_dir = tmp_path / 'work'
    run(train_command(config, '--work-dir', str(work_dir)), subprocess_env())

    losses = [r['loss'] for r in logged_scalars(work_dir) if 'loss' in r]
    assert len(losses) == 20
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    print(f'mean loss, first 3 iterations {first:.4f}, last 3 {last:.4f}')
    assert last < first - 0.05

    checkpoint = load(work_dir / 'iter_20.pth')
    assert checkpoint['meta']['iter'] == 20
    assert sorted(checkpoint['state_dict']) == sorted(
        f'refiner.{k}' for k in CLIPDINOiserRefiner(WIDTH, 16).state_dict())
    initial = load(work_dir / 'iter_10.pth')['state_dict']
    for source in (work_dir / 'clip_dinoiser_heads.safetensors', work_dir / 'iter_20.pth'):
        refiner = CLIPDINOiserRefiner(in_channels=WIDTH, proj_channels=16, checkpoint=source)
        for key, value in refiner.state_dict().items():
            torch.testing.assert_close(value, checkpoint['state_dict'][f'refiner.{key}'],
                                       rtol=0, atol=0)
            assert not torch.equal(value, initial[f'refiner.{key}'])  # it trained


RECORD_HOOK = '''
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class RecordResumeHook(Hook):
    """Save the iteration and optimizer state the run starts training with."""

    def __init__(self, out):
        self.out = out

    def before_train(self, runner):
        torch.save(dict(iter=runner.iter, optimizer=runner.optim_wrapper.state_dict()), self.out)
'''


def assert_same(a, b, where='optimizer'):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
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


def train_tool(*argv: str) -> None:
    spec = importlib.util.spec_from_file_location('train_tool', ROOT / 'tools' / 'train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as OMP_NUM_THREADS=1 in the subprocesses: 2 shared cores
    try:
        module.main(list(argv))
    finally:
        torch.set_num_threads(threads)


def test_sigkill_then_resume_continues(tmp_path, monkeypatch):
    images = write_images(tmp_path / 'images', 8, (80, 72))
    config = write_config(tmp_path, images, max_iters=40, interval=3)
    work_dir = tmp_path / 'work'
    env = subprocess_env()
    proc = subprocess.Popen(train_command(config, '--work-dir', str(work_dir)), cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while not list(work_dir.glob('iter_*.pth')):
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.time() < deadline, 'no checkpoint appeared'
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # Every checkpoint file present is complete (a save in flight is only a .tmp).
    for path in work_dir.glob('iter_*.pth'):
        assert load(path)['meta']['iter'] == int(path.stem.split('_')[1])
    resume_from = latest_checkpoint(work_dir)
    saved = load(resume_from)
    assert 0 < saved['meta']['iter'] < 40
    print(f'killed after iteration {saved["meta"]["iter"]} was checkpointed')
    (work_dir / 'iter_99.pth.tmp').write_bytes(b'half a checkpoint')  # a save killed midway

    (tmp_path / 'record_resume.py').write_text(RECORD_HOOK)
    record = tmp_path / 'resumed.pt'
    resume_config = tmp_path / 'resume.py'
    resume_config.write_text(f"""
_base_ = ['{config}']
custom_imports = dict(imports=['denseclip', 'denseclip.engine',
                               'denseclip.models.segmentors.clip_dinoiser_trainer',
                               'record_resume'], allow_failed_imports=False)
custom_hooks = [dict(type='ExportWeightsHook', module='refiner',
                     filename='clip_dinoiser_heads.safetensors'),
                dict(type='RecordResumeHook', out={str(record)!r})]
""")
    # tools/train.py's main() in this process (the first run was a killed subprocess): saves
    # a second interpreter start-up.
    monkeypatch.syspath_prepend(str(tmp_path))
    train_tool(str(resume_config), '--work-dir', str(work_dir), '--resume')
    resumed_log = sorted(work_dir.glob('*/*.log'))[-1].read_text()  # the newest run's log
    assert f'Load checkpoint from {resume_from}' in resumed_log

    started = torch.load(record, weights_only=True)
    assert started['iter'] == saved['meta']['iter']
    assert_same(started['optimizer'], saved['optimizer'])
    assert started['optimizer']['state'], 'AdamW moments were restored'
    final = load(latest_checkpoint(work_dir))
    assert final['meta']['iter'] == 40
    assert not list(work_dir.glob('*.tmp'))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_two_cpu_processes(tmp_path):
    images = write_images(tmp_path / 'images', 8, (64, 64))
    config = write_config(tmp_path, images, max_iters=2, interval=2)
    work_dir = tmp_path / 'work'
    env = subprocess_env(PORT=str(free_port()))
    result = run(['bash', str(ROOT / 'tools' / 'dist_train.sh'), str(config), '2',
                  '--work-dir', str(work_dir)], env)
    log = result.stdout + result.stderr
    assert 'Distributed training: True' in log and "dist_cfg: {'backend': 'gloo'}" in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    assert 'Iter(train) [2/2]' in log
    assert load(work_dir / 'iter_2.pth')['meta']['iter'] == 2
    assert (work_dir / 'clip_dinoiser_heads.safetensors').is_file()
