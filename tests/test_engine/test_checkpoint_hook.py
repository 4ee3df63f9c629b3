"""A run killed while it writes a checkpoint keeps its last complete one (max_keep_ckpts=1) and
resumes from it: mmengine's CheckpointHook deleted that one before writing the next."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from denseclip.engine import latest_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = textwrap.dedent('''
    import os, signal, sys
    import torch
    from mmengine.model import BaseModel
    from mmengine.runner import runner as runner_module
    import denseclip.engine  # noqa: F401  (registration)
    from denseclip.engine.runner import AtomicCheckpointRunner

    work_dir, resume, kill_at = sys.argv[1], sys.argv[2] == 'resume', int(sys.argv[3])

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return dict(loss=self.w(inputs).pow(2).mean())

    saves = []
    mmengine_save = runner_module.save_checkpoint

    def save(checkpoint, filename, **kwargs):  # killed halfway through save number kill_at
        saves.append(filename)
        if len(saves) == kill_at:
            with open(filename, 'wb') as f:
                f.write(b'half a checkpoint')
            os.kill(os.getpid(), signal.SIGKILL)
        mmengine_save(checkpoint, filename, **kwargs)

    runner_module.save_checkpoint = save
    data = [dict(inputs=torch.randn(2)) for _ in range(4)]
    runner = AtomicCheckpointRunner(
        model=Toy(), work_dir=work_dir, resume=resume,
        train_dataloader=dict(dataset=data, batch_size=2, collate_fn=dict(type='default_collate'),
                              sampler=dict(type='DefaultSampler', shuffle=False)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=4, val_interval=100),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1,
                                           max_keep_ckpts=1)),
        default_scope='mmengine')
    runner.train()
''')


def run(tmp_path: Path, mode: str, kill_at: int) -> subprocess.CompletedProcess:
    script = tmp_path / 'train_toy.py'
    script.write_text(SCRIPT)
    return subprocess.run([sys.executable, str(script), str(tmp_path / 'work'), mode,
                           str(kill_at)], capture_output=True, text=True, cwd=ROOT)


def test_a_kill_during_the_save_keeps_the_last_checkpoint_and_resume_continues(tmp_path):
    killed = run(tmp_path, 'fresh', kill_at=2)  # iter_1.pth saved, killed writing iter_2
    assert killed.returncode == -9, killed.stderr[-2000:]
    work = tmp_path / 'work'
    assert sorted(p.name for p in work.glob('iter_*')) == ['iter_1.pth', 'iter_2.pth.tmp']
    last = latest_checkpoint(work)
    assert Path(last).name == 'iter_1.pth'
    assert torch.load(last, map_location='cpu', weights_only=False)['meta']['iter'] == 1
    resumed = run(tmp_path, 'resume', kill_at=0)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert 'Load checkpoint from' in resumed.stderr + resumed.stdout
    # one checkpoint kept, the last; the partial file of the killed save is gone
    assert sorted(p.name for p in work.glob('iter_*')) == ['iter_4.pth']
    ckpt = torch.load(work / 'iter_4.pth', map_location='cpu', weights_only=False)
    assert ckpt['meta']['iter'] == 4
    assert ckpt['message_hub']['runtime_info']['keep_ckpt_ids'] == [4]
