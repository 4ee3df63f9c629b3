"""Every TextSpan config passes tools/test.py's checks and builds with a tiny CLIP; the toy
config runs end to end through tools/test.py."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmseg.structures import SegDataSample

from conftest import TINY_VIT
from denseclip.registry import MODELS
from denseclip.utils import check_config_keys, check_dataset_configs, check_model_config

ROOT = Path(__file__).resolve().parents[2]
LEAVES = sorted((ROOT / 'configs' / 'textspan').glob('*.py'))


def test_the_grid():
    assert [p.name for p in LEAVES] == [
        'textspan_toy-vit-p16_toy-fg.py', 'textspan_vit-b16_imagenet-seg.py',
        'textspan_vit-h14_imagenet-seg.py', 'textspan_vit-l14_imagenet-seg.py']


@pytest.mark.parametrize('leaf', LEAVES, ids=lambda p: p.name)
def test_config_builds_and_segments(leaf, tmp_path):
    cfg = Config.fromfile(str(leaf))
    check_config_keys(cfg, leaf.name)
    check_model_config(cfg.model, leaf.name)
    check_dataset_configs(cfg, leaf.name, splits=('test',))
    assert cfg.test_evaluator.type == 'ForegroundSegMetric'
    assert cfg.test_pipeline[0] == dict(type='LoadImageNetSegSample', image_size=224,
                                        gt_resize='squash')  # the released quirk
    model_cfg = cfg.model.to_dict()
    if 'imagenet-seg' in leaf.name:  # the released ImageNet list, duplicates kept
        assert len(Path(model_cfg['class_names']).read_text().splitlines()) == 1000
    tiny = tmp_path / 'tiny.json'
    tiny.write_text(json.dumps(TINY_VIT))
    model_cfg['backbone'].update(model=str(tiny), pretrained=None)
    model_cfg['templates'] = '{}'
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).eval()
    pred = model.predict(torch.randn(1, 3, 64, 64), [SegDataSample()])[0].pred_sem_seg.data
    assert pred.shape == (1, 64, 64) and set(pred.unique().tolist()) <= {0, 1}


def test_toy_config_runs_through_tools_test(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location('denseclip_test_tool', ROOT / 'tools/test.py')
    test_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_tool)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / 'metrics.json'
    rc = test_tool.main([str(ROOT / 'configs/textspan/textspan_toy-vit-p16_toy-fg.py'),
                         '--work-dir', str(tmp_path / 'work'), '--out', str(out),
                         '--cfg-options', 'test_dataloader.dataset.generate.num_images=3',
                         'test_dataloader.dataset.ann_file=toy_fg_n3.mat'])
    assert rc == 0
    metrics = json.loads(out.read_text())
    assert set(metrics) == {'pixAcc', 'mIoU', 'mAP', 'IoU.background', 'IoU.foreground'}
    assert 0 <= metrics['mIoU'] <= 100 and (tmp_path / 'data/toy_fg/toy_fg_n3.mat').is_file()
