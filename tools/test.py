"""Evaluate a benchmark config: mmengine's test loop with mmseg's IoUMetric, as mmseg's own
``tools/test.py``, after checks that fail early with a clear message
(:mod:`denseclip.utils.config_checks`).

    python tools/test.py configs/sclip/sclip_vit-b16_voc21.py
    python tools/test.py configs/sclip/sclip_vit-b16_voc21.py --pretrained ViT-B-16.pt \\
        --work-dir work_dirs/sclip_voc21 --out sclip_voc21.json
    python tools/test.py configs/sclip/sclip_toy-vit-p16_toy.py \\
        --cfg-options test_dataloader.dataset.generate.num_images=8 --save-preds preds/
    python tools/test.py configs/denseclip/denseclip_r50_ade20k-512x512.py \\
        --checkpoint work_dirs/denseclip_r50_ade20k-512x512/iter_80000.pth
    tools/dist_test.sh configs/sclip/sclip_vit-b16_voc21.py 4 [test.py args]   # torchrun

With ``--launcher pytorch`` (dist_test.sh) each process tests its share of the images and the
metric gathers every process's areas, so the metrics equal a single process's; the main
process writes them. Without CUDA the processes run on the CPU over gloo.

The metrics (``aAcc``, ``mIoU``, ``mAcc``, in percent) are written as JSON to ``--out``, else to
``<work_dir>/metrics.json``; mmengine writes its own logs under ``<work_dir>/<timestamp>/``.
"""
import argparse
import json
import logging
import os
import os.path as osp
import sys
from typing import Sequence

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

import denseclip  # noqa: F401  (registers the modules the checks look up)
from denseclip.engine import load_checkpoint_strict
from denseclip.engine.dist import finish_launcher, setup_launcher
from denseclip.utils import check_config, check_config_file

logger = logging.getLogger('test')


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a denseclip config on its benchmark')
    parser.add_argument('config', help='config file, e.g. configs/sclip/sclip_vit-b16_voc21.py')
    parser.add_argument('--checkpoint',
                        help='trained weights (denseclip layout, e.g. from tools/train.py or '
                        'tools/model_converters/), loaded strictly: every key and shape must '
                        'match the config\'s model; CLIP weights then come from it too')
    parser.add_argument('--pretrained',
                        help='CLIP weights replacing model.backbone.pretrained: an open_clip tag '
                        'or a local file (.pt, .pth, .bin, .safetensors)')
    parser.add_argument('--work-dir', help='logs and metrics (default: work_dirs/<config stem>)')
    parser.add_argument('--show-dir',
                        help='save each image painted with its prediction here (mmseg '
                        'SegVisualizationHook)')
    parser.add_argument('--out', help='JSON file for the metrics (default: '
                        '<work_dir>/metrics.json)')
    parser.add_argument('--save-preds',
                        help="save each prediction as <image stem>.png here (IoUMetric "
                        "output_dir; labels + 1 for datasets with reduce_zero_label, as mmseg)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (e.g. model.prob_thd=0.2 '
                        'test_dataloader.dataset.data_root=/data/voc)')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                        help='job launcher (pytorch: torchrun, see tools/dist_test.sh)')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    """The config with the command line applied, checked."""
    cfg = Config.fromfile(str(check_config_file(args.config)))
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.pretrained is not None:
        cfg.model.backbone.pretrained = args.pretrained
    elif args.checkpoint is not None:  # every weight comes from the checkpoint
        cfg.model.backbone.pretrained = None
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.show_dir is not None:
        # As mmseg tools/test.py trigger_visualization_hook.
        cfg.default_hooks.visualization.draw = True
        cfg.visualizer.save_dir = args.show_dir
    if args.save_preds is not None:
        cfg.test_evaluator.output_dir = args.save_preds
    check_config(cfg, args.config)
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(name)s: %(message)s')
    try:
        cfg = build_config(args)
    except (FileNotFoundError, KeyError, ValueError, TypeError) as err:
        logger.error('error: %s', err.args[0] if err.args else err)
        return 1
    setup_launcher(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    if args.checkpoint is not None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        try:
            load_checkpoint_strict(model, args.checkpoint)
        except (FileNotFoundError, ValueError) as err:
            logger.error('error: %s', err.args[0] if err.args else err)
            return 1
    metrics = {k: round(float(v), 4) for k, v in runner.test().items()}
    del runner
    finish_launcher()
    if not is_main_process():  # every process has the gathered metrics; one writes them
        return 0
    out = args.out or osp.join(cfg.work_dir, 'metrics.json')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(metrics, f, indent=2)
    logger.info('metrics written to %s: %s', out, metrics)
    return 0


if __name__ == '__main__':
    sys.exit(main())
