"""tools/dist_test.sh: 2 processes on gloo give the metrics of one process (the padding of the
distributed sampler dropped), for a training-free config and for a trained one loaded with
--checkpoint (strictly, into the model inside the DDP wrapper)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from denseclip.datasets.toy import ensure_toy_split
from denseclip.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def metrics(tmp_path: Path, name: str, config: str, nproc: int, *extra: str) -> dict:
    out = tmp_path / f'{name}.json'
    data = tmp_path / 'toy'
    args = [config, '--work-dir', str(tmp_path / name), '--out', str(out), *extra,
            '--cfg-options', f'test_dataloader.dataset.data_root={data}',
            'test_dataloader.dataset.generate.num_images=5']
    if nproc == 1:
        cmd = [sys.executable, 'tools/test.py', *args]
    else:
        cmd = ['bash', 'tools/dist_test.sh', args[0], str(nproc), *args[1:]]
    env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1')
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    if nproc > 1:
        assert 'Distributed launcher: pytorch' in log and f'GPU number: {nproc}' in log
        assert 'Iter(test) [3/3]' in log  # 5 images: 3 per process, one of them padding
    return json.loads(out.read_text())


@pytest.fixture
def toy_split(tmp_path):
    ensure_toy_split(str(tmp_path / 'toy'), num_images=5, seed=0, size=224)


def test_two_processes_give_one_process_metrics(tmp_path, toy_split):
    config = 'configs/sclip/sclip_toy-vit-p16_toy.py'
    single = metrics(tmp_path, 'single', config, 1)
    assert metrics(tmp_path, 'dist', config, 2) == single
    assert set(single) >= {'mIoU', 'mIoU_seen', 'mIoU_unseen'} and single['mIoU'] > 0


def test_a_checkpoint_is_loaded_into_every_process(tmp_path, toy_split):
    config = 'configs/mta_clip/mta-clip_toy-vit-p16_toy-seen.py'
    cfg = Config.fromfile(str(ROOT / config))
    init_default_scope('mmseg')
    torch.manual_seed(3)
    model = MODELS.build(cfg.model)
    model.init_weights()
    checkpoint = tmp_path / 'model.pth'
    torch.save({'state_dict': model.state_dict()}, checkpoint)
    single = metrics(tmp_path, 'single', config, 1, '--checkpoint', str(checkpoint))
    assert metrics(tmp_path, 'dist', config, 2, '--checkpoint', str(checkpoint)) == single
