"""Every grounding config passes the checks of tools/test.py and builds, with a tiny CLIP in
place of its weights."""
from pathlib import Path

import pytest
from mmengine.config import Config

from conftest import OPENAI_RN, TINY_VIT, make_clip
from denseclip.registry import DATASETS, METRICS, MODELS
from denseclip.utils.config_checks import (check_config_keys, check_dataset_configs,
                                           check_model_config)

CONFIGS = sorted(Path(__file__).resolve().parents[2].glob('configs/grounding/*.py'))


def test_there_are_configs():
    assert len(CONFIGS) >= 20


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.stem)
def test_config_builds(path):
    cfg = Config.fromfile(str(path))
    check_config_keys(cfg, str(path))
    check_model_config(cfg.model, str(path))
    check_dataset_configs(cfg, str(path), splits=('test',))
    model_cfg = cfg.model.copy()
    resnet = model_cfg.backbone.type == 'CLIPResNet'
    model_cfg.backbone = dict(model_cfg.backbone, pretrained=None,
                              model=make_clip(OPENAI_RN if resnet else TINY_VIT))
    model = MODELS.build(model_cfg)
    assert model.alpha == cfg.model.alpha
    assert type(model.heatmap).__name__ == cfg.model.heatmap.type
    for metric in cfg.test_evaluator:
        METRICS.build(metric)
    assert DATASETS.get(cfg.test_dataloader.dataset.type) is not None
