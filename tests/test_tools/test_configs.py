"""Every config in configs/ loads and inherits only from _base_ files; every evaluation config of
the training-free segmentor builds and segments with a tiny CLIP; a sample of settings equals
the reference notes (§2.2-§2.3, §3-§6)."""
import ast
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmseg.structures import SegDataSample

from conftest import TINY_VIT
from denseclip.models.text.templates import get_templates
from denseclip.registry import DATASETS, MODELS
from denseclip.utils import check_model_config, check_vocabulary

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
LEAVES = sorted(p.relative_to(CONFIGS).as_posix() for p in CONFIGS.glob('*/*.py')
                if p.parent.name != '_base_')
# Evaluation configs of OpenVocabSegmentor (training configs of trained methods are built by
# their own tests: they need teacher weights a tiny CLIP cannot stand in for).
SEGMENTOR_LEAVES = [leaf for leaf in LEAVES
                    if Config.fromfile(str(CONFIGS / leaf)).model.type == 'OpenVocabSegmentor']
METHODS = ('vanilla', 'maskclip', 'sclip', 'clearclip', 'naclip')
BENCHMARKS = ('voc21', 'voc20', 'context60', 'context59', 'coco-object', 'coco-stuff171',
              'cityscapes', 'ade20k')


def test_the_grid_is_complete():
    expected = {f'{m}/{m}_vit-b16_{d}.py' for m in METHODS for d in BENCHMARKS}
    expected |= {f'{m}/{m}_toy-vit-p16_toy.py' for m in METHODS}
    assert expected <= set(SEGMENTOR_LEAVES)


@pytest.mark.parametrize('leaf', LEAVES)
def test_leaf_inherits_only_base_files(leaf):
    source = (CONFIGS / leaf).read_text()
    tree = ast.parse(source)
    bases = next(ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and node.targets[0].id == '_base_')
    assert bases and all(b.startswith('../_base_/') for b in bases)
    for line in source.splitlines():
        if '_delete_' in line:
            assert '#' in line, f'{leaf}: _delete_ without a comment'


@pytest.fixture(scope='module')
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp('tiny') / 'tiny_vit.json'
    path.write_text(json.dumps(TINY_VIT))
    return str(path)


@pytest.mark.parametrize('leaf', SEGMENTOR_LEAVES)
def test_config_builds_and_segments(leaf, tiny_config):
    cfg = Config.fromfile(str(CONFIGS / leaf))
    where = str(leaf)
    check_model_config(cfg.model, where)
    check_vocabulary(cfg, where)
    assert get_templates(cfg.model.templates)
    assert cfg.test_dataloader.dataset.pipeline == cfg.test_pipeline
    assert cfg.test_dataloader.batch_size == 1
    assert cfg.test_evaluator == dict(type='IoUMetric', iou_metrics=['mIoU'])
    # Tiny-model override: a 2-layer CLIP with random weights, one template (the 80 templates
    # x 171 names of COCO-Stuff take ~20 s through even a tiny text tower).
    cfg.model.backbone.update(model=tiny_config, pretrained=None)
    cfg.model.templates = '{}'
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    classes = DATASETS.get(cfg.test_dataloader.dataset.type).METAINFO['classes']
    assert model.num_classes == len(classes)
    sample = SegDataSample(metainfo=dict(ori_shape=(40, 70), img_shape=(48, 80)))
    inputs = torch.randn(1, 3, 48, 80)
    pred = model.predict(inputs, [sample])[0].pred_sem_seg.data
    assert pred.shape == (1, 40, 70)
    assert 0 <= pred.min() and pred.max() < len(classes)


def _get(cfg, path):
    for key in path.split('.'):
        cfg = cfg[int(key)] if isinstance(cfg, list) else cfg[key]
    return cfg


PAMR = dict(type='PAMRRefiner', num_iter=10, dilations=(8, 16))
# config -> expected settings, from the reference notes' tables (S = short side of Resize).
EXPECTED = {
    'sclip/sclip_vit-b16_voc21.py': dict(
        S=336, logit_scale=65, prob_thd=0.1, area_thd=0.1, slide_crop=224, slide_stride=112,
        refiner=None, dense='SCLIPAttention', pos_interp='scale_factor', vocab='sclip/cls_voc21',
        name_sep=', ', templates='openai_imagenet'),
    'sclip/sclip_vit-b16_context60.py': dict(S=336, logit_scale=50, prob_thd=0.1, area_thd=None),
    'sclip/sclip_vit-b16_coco-object.py': dict(S=336, logit_scale=50, prob_thd=0.1),
    'sclip/sclip_vit-b16_voc20.py': dict(S=336, logit_scale=40, prob_thd=0.0, area_thd=None),
    'sclip/sclip_vit-b16_coco-stuff171.py': dict(S=448, logit_scale=40, prob_thd=0.0),
    'sclip/sclip_vit-b16_cityscapes.py': dict(S=560, slide_crop=224, slide_stride=112),
    'sclip/sclip_vit-b16_ade20k.py': dict(S=336, vocab='sclip/cls_ade20k'),
    'vanilla/vanilla_vit-b16_voc21.py': dict(
        S=336, logit_scale=65, prob_thd=0.1, area_thd=0.1, dense='VanillaAttention',
        pos_interp='scale_factor'),
    'naclip/naclip_vit-b16_voc21.py': dict(
        S=336, slide_crop=0, logit_scale=40, prob_thd=0.1, refiner=PAMR,
        dense='NACLIPAttention', pos_interp='scale_factor', vocab='sclip/cls_voc21'),
    'naclip/naclip_vit-b16_voc20.py': dict(S=336, slide_crop=0, prob_thd=0.0, refiner=PAMR),
    'naclip/naclip_vit-b16_context60.py': dict(S=336, slide_crop=224, slide_stride=112,
                                               prob_thd=0.1, refiner=PAMR),
    'naclip/naclip_vit-b16_coco-stuff171.py': dict(S=336, refiner=PAMR),
    'naclip/naclip_vit-b16_cityscapes.py': dict(S=560, slide_crop=224, refiner=PAMR),
    'clearclip/clearclip_vit-b16_voc21.py': dict(
        S=448, slide_crop=448, slide_stride=224, logit_scale=50, prob_thd=0.5, refiner=None,
        dense='ClearCLIPAttention', name_sep=',', pad_to_patch=True,
        vocab='clearclip/cls_voc21'),
    'clearclip/clearclip_vit-b16_context60.py': dict(S=448, prob_thd=0.15,
                                                     vocab='sclip/cls_context60'),
    'clearclip/clearclip_vit-b16_coco-object.py': dict(S=448, prob_thd=0.4,
                                                       vocab='clearclip/cls_coco_object'),
    'clearclip/clearclip_vit-b16_cityscapes.py': dict(S=448, slide_crop=224, slide_stride=224),
    'clearclip/clearclip_vit-b16_ade20k.py': dict(S=448, slide_crop=448, prob_thd=0.0),
    'maskclip/maskclip_vit-b16_voc20.py': dict(
        scale=(2048, 512), slide_crop=0, prob_thd=0.0, dense='MaskCLIPAttention',
        pos_interp='size', templates='maskclip', vocab='maskclip/cls_voc20'),
    'maskclip/maskclip_vit-b16_context59.py': dict(scale=(520, 520), slide_crop=0),
    'maskclip/maskclip_vit-b16_cityscapes.py': dict(scale=(1024, 512), slide_crop=0),
}
PATHS = {
    'slide_crop': 'model.slide_crop', 'slide_stride': 'model.slide_stride',
    'logit_scale': 'model.logit_scale', 'prob_thd': 'model.prob_thd',
    'area_thd': 'model.area_thd', 'refiner': 'model.refiner', 'name_sep': 'model.name_sep',
    'templates': 'model.templates', 'pad_to_patch': 'model.pad_to_patch',
    'dense': 'model.backbone.dense.type', 'pos_interp': 'model.backbone.pos_interp',
    'scale': 'test_pipeline.1.scale',
}


@pytest.mark.parametrize('leaf', list(EXPECTED))
def test_settings_equal_the_reference(leaf):
    cfg = Config.fromfile(str(CONFIGS / leaf))
    assert cfg.model.backbone.model == 'ViT-B-16' and cfg.model.backbone.pretrained == 'openai'
    resize = cfg.test_pipeline[1]
    assert resize.type == 'Resize' and resize.keep_ratio
    for name, value in EXPECTED[leaf].items():
        if name == 'S':
            assert tuple(resize.scale) == (2048, value), leaf
        elif name == 'vocab':
            assert cfg.model.vocabulary.endswith(f'/vocabularies/{value}.txt'), leaf
        elif name == 'scale':
            assert tuple(resize.scale) == value, leaf
        else:
            got = _get(cfg, PATHS[name])
            got = dict(got, dilations=tuple(got['dilations'])) if isinstance(got, dict) else got
            assert got == value, f'{leaf}: {name} = {got!r}, expected {value!r}'
