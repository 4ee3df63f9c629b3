"""Every MTA-CLIP config checks out; the released r50_1.py settings are the harness's; the
ADE20K config builds at its real geometry (random RN50), takes a training step and segments;
the optimizer groups follow the released multipliers."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.datasets import ADE20KDataset
from mmseg.structures import SegDataSample

from denseclip.registry import MODELS
from denseclip.utils import check_model_config

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
LEAVES = sorted(p.name for p in (CONFIGS / 'mta_clip').glob('*.py'))
ADE = 'mta-clip_r50_ade20k-512x512.py'


def load(leaf: str) -> Config:
    return Config.fromfile(str(CONFIGS / 'mta_clip' / leaf))


def test_the_released_config_and_the_toy_one_exist():
    assert LEAVES == [ADE, 'mta-clip_toy-vit-p16_toy-seen.py']


@pytest.mark.parametrize('leaf', LEAVES)
def test_config_checks_out(leaf):
    check_model_config(load(leaf).model, leaf)


def test_released_settings():
    cfg = load(ADE)
    head = cfg.model.decode_head
    assert cfg.model.extra_names == ['none'] and cfg.model.prompt.num_sets == 3
    assert cfg.model.prompt.num_tokens == 8 and cfg.model.text_encoder.context_length == 13
    assert (head.num_queries, head.transformer_decoder.num_layers) == (100, 9)
    assert head.pixel_decoder.encoder.num_layers == 6 and head.query_loss_type == 2
    assert head.loss_cls.loss_weight == 2.0 and head.loss_cls.class_weight[-1] == 0.1
    assert (head.loss_mask.loss_weight, head.loss_dice.loss_weight) == (5.0, 5.0)
    assert head.train_cfg.num_points == 12544 and head.gamma_init == 1e-4
    # the released quirk: ImageNet's mean/std feed CLIP
    assert cfg.model.data_preprocessor.mean == [123.675, 116.28, 103.53]
    optim = cfg.optim_wrapper
    assert (optim.optimizer.lr, optim.optimizer.weight_decay) == (1e-4, 0.02)
    assert optim.clip_grad.max_norm == 0.01
    assert cfg.train_cfg.max_iters == 160000 and cfg.train_dataloader.batch_size == 8
    assert (cfg.model.slide_crop, cfg.model.slide_stride) == (512, 341)


def test_ade20k_config_builds_trains_a_step_and_segments():
    cfg = load(ADE)
    model_cfg = cfg.model.to_dict()
    model_cfg['backbone']['pretrained'] = None  # random weights: no download
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(model_cfg))
    classes = ADE20KDataset.METAINFO['classes']
    assert model.vocabulary.class_names == list(classes)
    head = model.decode_head
    assert head.query_embed.weight.shape == (100 + 3 * 151, 256)  # 553 joint queries
    size = 64
    labels = torch.randint(0, len(classes), (2, 1, size, size))
    samples = [SegDataSample(gt_sem_seg=PixelData(data=lab),
                             metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
               for lab in labels]
    model.train()
    losses = model.loss(torch.randn(2, 3, size, size), samples)
    assert len(losses) == 4 * 9  # cls, queries, mask, dice at each of the 9 layers
    loss = sum(losses.values())
    assert torch.isfinite(loss)
    loss.backward()
    assert model.prompt.contexts.grad.abs().sum() > 0
    # the released multipliers: backbone x0.1, text tower out, embeddings and norms no decay
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    assert not any(id(p) in groups for p in model.text_encoder.parameters())
    conv = groups[id(model.backbone.visual.conv1.weight)]
    assert conv['lr'] == pytest.approx(1e-5) and conv['weight_decay'] == 0.02
    for p in (head.query_embed.weight, head.query_feat.weight, head.level_embed.weight,
              head.norm_project.weight):
        assert groups[id(p)]['weight_decay'] == 0 and groups[id(p)]['lr'] == 1e-4
    assert groups[id(head.gamma)]['weight_decay'] == 0.02
    model.eval()
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, size, 96), [SegDataSample(
            metainfo=dict(img_shape=(size, 96), ori_shape=(size, 96)))])
    probs = out[0].seg_logits.data
    assert probs.shape == (len(classes), size, 96)
    assert (probs >= 0).all() and (probs.sum(0) <= 100 + 1e-3).all()  # Σ_q p_q(c) σ(m_q)
