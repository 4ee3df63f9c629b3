"""Every CAT-Seg config: the model config checks out, its dimensions meet the CLIP it names
(open_clip's own model configs), each test config's name file has its dataset's classes, and the
ViT-B training config builds at its real geometry (random weights), takes a training step on
384 x 384 crops and segments through the released test views."""
from __future__ import annotations

from pathlib import Path

import open_clip
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import DATASETS
from mmseg.structures import SegDataSample

from denseclip.models.text import Vocabulary
from denseclip.registry import MODELS
from denseclip.utils import check_model_config

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
LEAVES = sorted(p.name for p in (CONFIGS / 'catseg').glob('catseg_vit-*.py'))
TESTS = [leaf for leaf in LEAVES if '_test-' in leaf]
BENCHMARKS = ('ade20k-847', 'context459', 'ade20k-150', 'context59', 'voc20', 'voc20b')


def load(leaf: str) -> Config:
    return Config.fromfile(str(CONFIGS / 'catseg' / leaf))


def test_both_models_are_trained_and_tested_on_every_benchmark():
    assert LEAVES == sorted(
        [f'catseg_{m}_coco-stuff171-384x384.py' for m in ('vit-b16', 'vit-l14-336')]
        + [f'catseg_{m}_coco-stuff171_test-{b}.py' for m in ('vit-b16', 'vit-l14-336')
           for b in BENCHMARKS])


@pytest.mark.parametrize('leaf', LEAVES)
def test_config_meets_its_clip(leaf):
    cfg = load(leaf)
    check_model_config(cfg.model, leaf)
    clip = open_clip.get_model_config(cfg.model.backbone.model)
    vision, head = clip['vision_cfg'], cfg.model.decode_head
    assert head.embed_dim == clip['embed_dim']  # cost volume and guidance read F (B, D, ...)
    assert head.guidance_channels == vision['width']  # the taps are the tower's tokens
    assert all(i < vision['layers'] - 1 for i in cfg.model.backbone.out_indices)
    grid = cfg.model.backbone.input_size // vision['patch_size']
    assert grid == 24 and grid % head.window_size == 0  # 24 x 24 tokens, 12-windows
    assert cfg.model.slide_crop == 384 and cfg.model.resize_to == (640, 640)


@pytest.mark.parametrize('leaf', TESTS)
def test_test_config_names_its_datasets_classes(leaf):
    cfg = load(leaf)
    dataset = DATASETS.get(cfg.test_dataloader.dataset.type)
    vocabulary = Vocabulary.from_file(cfg.model.test_vocabulary)
    assert vocabulary.num_classes == len(dataset.METAINFO['classes'])
    pipeline = cfg.test_dataloader.dataset.pipeline
    assert dict(type='Resize', scale=(2560, 640), keep_ratio=True) in pipeline
    wide = dataset.__name__ in ('ADE20K847Dataset', 'PascalContext459Dataset')
    assert pipeline[2].type == ('LoadWideAnnotations' if wide else 'LoadAnnotations')


def test_vit_b_trains_a_step_and_segments_at_its_real_geometry():
    cfg = load('catseg_vit-b16_coco-stuff171-384x384.py')
    assert cfg.optim_wrapper.clip_grad.max_norm == 0.01
    assert cfg.train_dataloader.dataset.type == 'COCOStuffDataset'
    model_cfg = cfg.model.to_dict()
    model_cfg['backbone']['pretrained'] = None  # random weights: no download
    names = Vocabulary.from_file(model_cfg['vocabulary']).class_names
    assert len(names) == 171
    model_cfg['vocabulary'] = names[:3]  # a 3-class step: the text tower runs per class
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(model_cfg))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad
                 and n.startswith(('backbone.', 'text_encoder.'))}
    assert len(trainable) == 2 * 12 + 2 * 12  # q and v of 12 image and 12 text blocks
    labels = torch.randint(0, 3, (1, 1, 384, 384))
    samples = [SegDataSample(gt_sem_seg=PixelData(data=labels[0]),
                             metainfo=dict(img_shape=(384, 384), ori_shape=(384, 384)))]
    model.train()
    loss = model.loss(torch.randn(1, 3, 384, 384), samples)['loss_bce']
    loss.backward()
    assert torch.isfinite(loss)
    model.eval()
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, 200, 300), [SegDataSample(
            metainfo=dict(img_shape=(200, 300), ori_shape=(200, 300)))])
    assert out[0].seg_logits.data.shape == (3, 200, 300)
