"""Train a denseclip model from a config (OpenMMLab style, as mmseg's tools/train.py).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options k=v ...] [--launcher none|pytorch]
    tools/dist_train.sh CONFIG NUM_PROCESSES [args]      # torchrun, --launcher pytorch

Runs mmengine's Runner; unless the config names another ``runner_type``, denseclip's
``AtomicCheckpointRunner`` (checkpoints written to a temp file and renamed; resume under torch's
``weights_only=True``). ``--resume`` alone resumes from the latest checkpoint in the work dir;
``--resume CKPT`` from that file. Without CUDA, distributed runs use gloo on the CPU.
"""
from __future__ import annotations

import argparse
import logging
import os
import os.path as osp
import sys

import denseclip  # noqa: F401  first: installs mmcv._ext before any mmseg import
import denseclip.engine  # noqa: F401  registers AtomicCheckpointRunner and the hooks
import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmseg.registry import RUNNERS

from denseclip.engine.checkpoint import check_checkpoint_file
from denseclip.engine.dist import finish_launcher, setup_launcher
from denseclip.utils import (check_config_file, check_config_keys, check_dataset_configs,
                             check_model_config, scope_registries)

DEFAULT_RUNNER = 'AtomicCheckpointRunner'


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a denseclip model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint; without a path, from the latest checkpoint in the '
        'work dir')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. train_dataloader.batch_size=8)')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                        help='job launcher (pytorch: torchrun, see tools/dist_train.sh)')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if not torch.cuda.is_available():
            raise ValueError("--amp: mmengine's AmpOptimWrapper trains on GPUs only and no CUDA "
                             'device is available; drop --amp to train in float32 on the CPU')
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in the config.', logger='current',
                      level=logging.WARNING)
        elif wrapper != 'OptimWrapper':
            raise ValueError(f'{args.config}: --amp needs optim_wrapper.type=OptimWrapper, got '
                             f'{wrapper!r}')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if cfg.get('runner_type') is None:
        cfg.runner_type = DEFAULT_RUNNER
    return cfg


def check(args: argparse.Namespace) -> Config:
    """The config, after the checks that fail before anything runs: the file and its bases
    parse, no top-level key is a typo, the model and every split's dataset config name
    registered types and real arguments, a ``--resume`` file is a complete checkpoint."""
    check_config_file(args.config)
    cfg = build_config(args)
    check_config_keys(cfg, args.config)
    check_model_config(cfg.model, args.config, registry=scope_registries(cfg)[0])
    check_dataset_configs(cfg, args.config)
    if args.resume not in (None, 'auto'):
        check_checkpoint_file(args.resume, '--resume')
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = check(args)
    except (FileNotFoundError, KeyError, ValueError, TypeError) as err:
        print(f'train.py: error: {err.args[0] if err.args else err}', file=sys.stderr)
        return 1
    setup_launcher(cfg, args.launcher)
    runner = RUNNERS.build(cfg)
    runner.train()
    del runner
    finish_launcher()
    return 0


if __name__ == '__main__':
    sys.exit(main())
