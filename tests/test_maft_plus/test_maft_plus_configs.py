"""Every MAFT+ config checks out; the released settings (train_semantic_{base,large}.yaml and
their bases) are the harness's; the B config builds at its real geometry (random ConvNeXt-B),
takes a training step with the released optimizer groups and segments; the toy config trains a
step and segments."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from denseclip.models.text import Vocabulary
from denseclip.registry import MODELS
from denseclip.utils import check_model_config

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'configs'
LEAVES = sorted(p.name for p in (CONFIGS / 'maft_plus').glob('*.py'))
TESTS = {'ade20k-847': 847, 'ade20k-150': 150, 'context459': 459, 'context59': 59, 'voc20': 20}
PUBLISHED = {'b': (13.8, 34.6, 16.2, 57.5, 95.4), 'l': (15.1, 36.1, 21.6, 59.4, 96.5)}


def load(leaf: str) -> Config:
    return Config.fromfile(str(CONFIGS / 'maft_plus' / leaf))


def test_the_released_configs_and_the_toy_one_exist():
    expected = [f'maft-plus_convnext-{m}_coco-stuff171{t}.py' for m in 'bl'
                for t in ['', *sorted(f'_test-{k}' for k in TESTS)]]
    assert LEAVES == sorted(expected + ['maft-plus_toy-vit-p16_toy-open-vocab.py'])


@pytest.mark.parametrize('leaf', LEAVES)
def test_config_checks_out(leaf):
    check_model_config(load(leaf).model, leaf)


@pytest.mark.parametrize('size', 'bl')
def test_released_settings(size):
    cfg = load(f'maft-plus_convnext-{size}_coco-stuff171.py')
    model, head = cfg.model, cfg.model.decode_head
    name, tag, dim, channels, iters = {
        'b': ('convnext_base_w_320', 'laion_aesthetic_s13b_b82k_augreg', 640,
              [128, 256, 512, 1024], 60000),
        'l': ('convnext_large_d_320', 'laion2b_s29b_b131k_ft_soup', 768,
              [192, 384, 768, 1536], 55000)}[size]
    for clip in (model.backbone, head.teacher):  # backbone_t: the same CLIP
        assert (clip.type, clip.model, clip.pretrained) == ('CLIPConvNeXt', name, tag)
    assert head.embed_dim == dim and head.in_channels == channels
    # cdt_pixels is left at its default, 'released' (the released checkpoints' P)
    assert (head.cdt_heads, head.panoptic_cdt) == (8, False) and 'cdt_pixels' not in head
    assert (head.rc_weight, tuple(head.rc_scales), head.mask_aware_weight) == (0.1, (1, 2, 4), 1)
    assert (head.num_queries, head.transformer_decoder.num_layers) == (100, 9)
    assert head.pixel_decoder.encoder.num_layers == 6 and head.feat_channels == 256
    assert head.loss_cls.loss_weight == 2.0 and head.loss_cls.class_weight[-1] == 0.1
    assert len(head.loss_cls.class_weight) == 172
    assert (head.loss_mask.loss_weight, head.loss_dice.loss_weight) == (5.0, 5.0)
    assert head.train_cfg.num_points == 12544
    assert model.prompt.templates == 'vild' and model.name_sep == ','
    vocabulary = Vocabulary.from_file(model.vocabulary, sep=',')
    assert vocabulary.num_classes == 171 and vocabulary.class_names[0] == 'person'
    assert model.data_preprocessor.mean == [122.7709383, 116.7460125, 104.09373615]
    optim = cfg.optim_wrapper
    assert optim.type == 'AmpOptimWrapper'
    assert (optim.optimizer.lr, optim.optimizer.weight_decay) == (1e-4, 2e-5)
    assert optim.clip_grad.max_norm == 0.01 and optim.paramwise_cfg.norm_decay_mult == 0
    assert optim.paramwise_cfg.custom_keys['backbone'].lr_mult == 0.1
    assert cfg.train_cfg.max_iters == iters and cfg.param_scheduler[0].end == iters
    assert cfg.param_scheduler[0].power == 0.9 and cfg.train_dataloader.batch_size == 1
    assert [t['type'] for t in cfg.train_pipeline] == [
        'LoadImageFromFile', 'LoadAnnotations', 'ResizeShortestEdge', 'RandomFlip',
        'PackSegInputs']
    for key, published in zip(TESTS, PUBLISHED[size]):
        leaf = f'maft-plus_convnext-{size}_coco-stuff171_test-{key}.py'
        test = load(leaf)
        assert Vocabulary.from_file(test.model.test_vocabulary, sep=',').num_classes == \
            TESTS[key]
        assert test.test_dataloader.dataset.pipeline[1] == dict(
            type='Resize', scale=(1333, 800), keep_ratio=True)
        assert f'{published} mIoU' in (CONFIGS / 'maft_plus' / leaf).read_text()
        assert test.model.slide_crop == 0 and test.model.pad_multiple == 32


def build(model_cfg: dict):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    return MODELS.build(ConfigDict(model_cfg))


def seg_samples(labels: torch.Tensor) -> list[SegDataSample]:
    size = tuple(labels.shape[-2:])
    return [SegDataSample(gt_sem_seg=PixelData(data=lab[None]),
                          metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size))
            for lab in labels]


def test_base_config_builds_trains_a_step_and_segments():
    cfg = load('maft-plus_convnext-b_coco-stuff171.py')
    model_cfg = cfg.model.to_dict()
    for clip in (model_cfg['backbone'], model_cfg['decode_head']['teacher']):
        clip['pretrained'] = None  # random ConvNeXt-B: no download
    names = ['person', 'grass', 'sky']  # a short vocabulary: the text tower runs on the CPU
    model_cfg.update(vocabulary=names)
    model_cfg['decode_head'].update(num_classes=3)
    model_cfg['decode_head']['loss_cls']['class_weight'] = [1.0, 1.0, 1.0, 0.1]
    model_cfg['decode_head']['train_cfg']['num_points'] = 256
    model = build(model_cfg)
    head = model.decode_head
    assert head.backbone_t.embed_dim == 640 and head.backbone_t.stage_channels == (
        128, 256, 512, 1024)
    model.train()
    labels = torch.zeros(2, 128, 128, dtype=torch.long)
    labels[:, 64:] = 2
    losses = model.loss(torch.randn(2, 3, 128, 128), seg_samples(labels))
    assert len(losses) == 3 * 10 + 2  # 3 terms at 10 predictions, L_MA, L_RC
    sum(losses.values()).backward()
    optim = cfg.optim_wrapper.to_dict()
    optim['type'] = 'OptimWrapper'  # AmpOptimWrapper needs CUDA; the groups are the same
    wrapper = build_optim_wrapper(model, ConfigDict(optim))
    groups = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    assert not any(id(p) in groups for p in [*model.text_encoder.parameters(),
                                             *head.backbone_t.parameters()])
    stem = groups[id(model.backbone.visual.trunk.stem[0].weight)]
    assert stem['lr'] == pytest.approx(1e-5) and stem['weight_decay'] == 2e-5
    for p in (head.query_embed.weight, head.query_feat.weight, head.level_embed.weight,
              head.void_embedding.weight, head.cdt.norm.weight):
        assert groups[id(p)]['weight_decay'] == 0 and groups[id(p)]['lr'] == 1e-4
    assert groups[id(head.cdt.proj.weight)]['weight_decay'] == 2e-5
    # the student's CLIP head gets no gradient (frozen in the release)
    assert all(p.grad is None for p in model.backbone.visual.head.parameters())
    model.eval()
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, 96, 128), [SegDataSample(
            metainfo=dict(img_shape=(96, 128), ori_shape=(96, 128)))])
    probs = out[0].seg_logits.data
    assert probs.shape == (3, 96, 128) and (probs >= 0).all()
    assert (probs.sum(0) <= 100 + 1e-3).all()  # Σ_q P_q(c) σ(m_q) over 100 masks


def test_toy_config_trains_a_step_and_segments():
    cfg = load('maft-plus_toy-vit-p16_toy-open-vocab.py')
    model = build(cfg.model.to_dict())
    assert model.decode_head.cdt_pixels == 'released'
    model.train()
    labels = torch.randint(0, 7, (2, 224, 224))
    losses = model.loss(torch.randn(2, 3, 224, 224), seg_samples(labels))
    assert torch.isfinite(sum(losses.values()))
    model.eval()
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, 224, 224))
    assert out[0].seg_logits.data.shape == (10, 224, 224)  # the 10 toy classes at test time
