"""Every config of configs/ovd loads, inherits only from _base_ files, names registered
dataset / metric types, and builds its model (tiny CLIP stand-ins for the downloaded ones);
the class lists written out in the dataset bases equal the package's."""
from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import pytest
from conftest import OPENAI_RN, TINY_VIT
from mmdet.registry import DATASETS, METRICS
from mmengine.config import Config
from mmengine.registry import DefaultScope

import denseclip  # noqa: F401
import denseclip.datasets.toy_det  # noqa: F401
import denseclip.evaluation.ovd_metric  # noqa: F401
from denseclip.datasets.ovd import COCO_OVD_BASE, COCO_OVD_NOVEL
from denseclip.models.detectors.regionclip import RegionCLIPDetector
from denseclip.registry import MMDET_MODELS
from denseclip.toy.instances import (TOY_DET_BASE_CLASSES, TOY_DET_CLASSES,
                                     TOY_DET_NOVEL_CLASSES)

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
LEAVES = sorted(p.name for p in (CONFIGS / 'ovd').glob('*.py'))


def test_the_leaves_are_there():
    assert {'rpn_toy-vit-p16_toy-det-base.py', 'rpn_toy-vit-p16_toy-det-base-only.py',
            'regionclip_toy-vit-p16_zs_toy-det.py',
            'rpn_r50-fpn_1x_coco-ovd-base.py', 'rpn_r50-fpn_1x_lvis-base.py',
            'regionclip_rn50-c4_zs_coco-ovd.py', 'regionclip_rn50-c4_zs-gt_coco-ovd.py',
            'regionclip_rn50x4-c4_zs_lvis.py', 'regionclip_rn50-c4_transfer_coco-ovd.py',
            'regionclip_rn50x4-c4_transfer_lvis.py',
            'regionclip_vit-b16-naclip_zs_coco-ovd.py'} <= set(LEAVES)


@pytest.fixture(scope='module')
def tiny_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tiny_det')
    rn, vit = folder / 'rn.json', folder / 'vit.json'
    rn.write_text(json.dumps(OPENAI_RN))
    vit.write_text(json.dumps(TINY_VIT))
    return str(rn), str(vit)


def _tiny(model: dict, tiny_files) -> dict:
    """The model config with tiny random CLIPs for the downloaded ones (toy CLIP kept)."""
    model = copy.deepcopy(model)
    rn, vit = tiny_files
    if model['type'] == 'RegionCLIPDetector':
        bb = model['backbone']
        if 'toy_clip' not in str(bb['model']):
            bb.update(model=rn if bb['type'] == 'CLIPResNet' else vit, pretrained=None)
            model['roi_size'] = None  # the tiny RN's attention grid
        if isinstance(model.get('vocabulary'), str):  # LVIS: the converter's name file
            model['vocabulary'] = ['aerosol can', 'air conditioner']
        model['rpn_checkpoint'] = None
    rpn = model if model['type'] == 'RPN' else model.get('rpn')
    if rpn is not None and rpn['backbone']['type'] == 'ResNet':
        rpn['backbone'].update(depth=18, init_cfg=None)  # no torchvision download
        if rpn.get('neck') is not None:
            rpn['neck']['in_channels'] = [64, 128, 256, 512]
        else:  # detectron2's C4 RPN on res4: 256 channels at depth 18
            rpn['rpn_head'].update(in_channels=256, feat_channels=256)
    return model


@pytest.mark.parametrize('leaf', LEAVES)
def test_config_builds(leaf, tiny_files):
    path = CONFIGS / 'ovd' / leaf
    tree = ast.parse(path.read_text())
    bases = next(ast.literal_eval(n.value) for n in tree.body
                 if isinstance(n, ast.Assign) and n.targets[0].id == '_base_')
    assert all(b.startswith('../_base_/') for b in bases)
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'mmdet'
    assert ('transfer' in leaf or 'rpn_' in leaf) == (cfg.train_dataloader is not None)
    for split in ('train_dataloader', 'test_dataloader'):
        if cfg[split] is None:
            continue
        ds = cfg[split].dataset
        ds = ds.get('dataset', ds)  # ClassBalancedDataset
        assert DATASETS.get(ds.type) is not None, ds.type
    assert METRICS.get(cfg.test_evaluator.type) is not None
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MMDET_MODELS.build(_tiny(cfg.model, tiny_files))
    if isinstance(model, RegionCLIPDetector):
        assert model.temperature == 0.01 and model.test_cfg['nms']['iou_threshold'] == 0.5
        if 'lvis' in leaf:
            assert model.test_cfg['max_per_img'] == 300
        elif 'coco' in leaf:
            assert model.class_names == list(cfg.classes)  # the test split's 65, in order
            assert model.test_cfg['score_thr'] == 0.001
        if 'transfer' in leaf or 'released' in leaf:
            assert model.use_box_deltas
        else:
            assert not model.use_box_deltas
        if 'transfer_coco' in leaf:
            assert model.train_class_names == list(COCO_OVD_BASE)
            assert model.train_cfg['bg_weight'] == 0.2 and model.train_cfg['focal_gamma'] == 0.5


def test_class_lists_match_the_package():
    coco = Config.fromfile(str(CONFIGS / '_base_/datasets/coco_ovd.py'))
    assert tuple(coco.base_classes) == COCO_OVD_BASE and len(COCO_OVD_BASE) == 48
    assert tuple(coco.novel_classes) == COCO_OVD_NOVEL and len(COCO_OVD_NOVEL) == 17
    # the 65 in COCO id order: base and novel interleaved as COCO lists them
    assert sorted(coco.classes) == sorted(COCO_OVD_BASE + COCO_OVD_NOVEL)
    toy = Config.fromfile(str(CONFIGS / '_base_/datasets/toy_det.py'))
    assert tuple(toy.classes) == TOY_DET_CLASSES
    assert tuple(toy.base_classes) == TOY_DET_BASE_CLASSES
    assert tuple(toy.novel_classes) == TOY_DET_NOVEL_CLASSES
