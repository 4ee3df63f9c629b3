"""Every config in configs/denseclip_det/ builds at its real geometry (random weights), with the
released optimiser settings, takes a training step and predicts; the CLIP backbones go into
stock mmdet detectors through ``custom_imports`` and train a few steps on a tiny CLIP."""
from __future__ import annotations

import json
from pathlib import Path

import open_clip
import pytest
import torch
from mmdet.datasets import CocoDataset
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config, ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from denseclip.registry import MMDET_MODELS

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
LEAVES = sorted(p.name for p in (CONFIGS / 'denseclip_det').glob('*.py'))
TINY_RN = dict(embed_dim=32, quick_gelu=True,
               vision_cfg=dict(image_size=64, layers=(1, 1, 1, 1), width=16, head_width=64),
               text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=1, layers=1))
TINY_VIT = dict(embed_dim=32, quick_gelu=True,
                vision_cfg=dict(image_size=64, patch_size=16, width=64, layers=2, head_width=32),
                text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=1))
# DenseCLIP README, Detection: (framework, backbone) -> released config of each table row
ROWS = [f'{f}_{m}-{b}_fpn_1x_coco.py' for f in ('retinanet', 'mask-rcnn')
        for m in ('clip', 'denseclip') for b in ('r50', 'r101')]


def samples(num_classes: int, size=(64, 96), train: bool = True) -> list[DetDataSample]:
    out = []
    h, w = size
    for i in range(2):
        sample = DetDataSample(metainfo=dict(img_shape=size, ori_shape=size,
                                             scale_factor=(1.0, 1.0)))
        if train:
            box = torch.tensor([[8.0 + 8 * i, 6.0, 60.0, 50.0]])
            masks = torch.zeros(1, h, w, dtype=torch.bool)
            masks[0, 6:50, 8 + 8 * i:60] = True
            sample.gt_instances = InstanceData(bboxes=box, labels=torch.tensor([i % num_classes]),
                                               masks=BitmapMasks(masks.numpy(), h, w))
        out.append(sample)
    return out


def total_loss(losses: dict) -> torch.Tensor:
    return sum(v.sum() if torch.is_tensor(v) else sum(x.sum() for x in v)
               for k, v in losses.items() if 'loss' in k)


def build(model_cfg: dict):
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MMDET_MODELS.build(ConfigDict(model_cfg))  # attribute access, as the Runner gives
    model.init_weights()
    return model


def test_every_row_of_the_readme_table_has_a_config():
    assert set(ROWS) <= set(LEAVES)
    assert sorted(set(LEAVES) - set(ROWS)) == ['mask-rcnn_clip-vit-b16_sfp_1x_coco.py',
                                               'retinanet_denseclip-toy-vit-p16_toy-det.py']


def test_the_coco_vocabulary_is_mmdets_and_every_name_fits_the_prompt():
    cfg = Config.fromfile(str(CONFIGS / '_base_/models/denseclip_det_coco-classes.py'))
    assert tuple(cfg.coco_classes) == CocoDataset.METAINFO['classes']
    tokens = open_clip.get_tokenizer('RN50')(list(cfg.coco_classes))
    assert int((tokens.argmax(-1) - 1).max()) <= 3  # ContextPrompt name_length=3


@pytest.mark.parametrize('leaf', LEAVES)
def test_config_builds_with_the_released_optimiser_trains_a_step_and_predicts(leaf):
    cfg = Config.fromfile(str(CONFIGS / 'denseclip_det' / leaf))
    assert cfg.default_scope == 'mmdet'
    optim = cfg.optim_wrapper
    assert optim.optimizer.type == 'AdamW' and optim.clip_grad.max_norm == 0.1
    assert optim.paramwise_cfg.custom_keys.backbone.lr_mult == 0.1
    if 'coco' in leaf:
        assert optim.optimizer.lr == (1e-4 if leaf.startswith('retinanet') else 2e-4)
        assert cfg.train_cfg.max_epochs == 12
        assert cfg.param_scheduler[1].milestones == [8, 11]
    model_cfg = cfg.model.to_dict()
    if 'toy' not in leaf:
        model_cfg['backbone']['pretrained'] = None  # random weights: no download
    model = build(model_cfg)
    denseclip = 'denseclip' in leaf
    if denseclip:
        classes = cfg.train_dataloader.dataset.get('metainfo', {}).get(
            'classes', CocoDataset.METAINFO['classes'])
        assert model.class_names == tuple(classes)
        assert cfg.custom_hooks == [dict(type='DetVocabularyCheckHook')]
    num_classes = (model.bbox_head.num_classes if hasattr(model, 'bbox_head')
                   else model.roi_head.bbox_head.num_classes)
    # the released paramwise_cfg under mmdet's scope: the frozen text tower is left out, the
    # backbone gets a tenth of the lr
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    base_lr = cfg.optim_wrapper.optimizer.lr
    assert groups[id(next(model.backbone.parameters()))]['lr'] == pytest.approx(0.1 * base_lr)
    if denseclip:
        assert not any(id(p) in groups for p in model.text_encoder.parameters())
        assert groups[id(model.prompt.contexts)]['lr'] == pytest.approx(base_lr)
    model.train()
    data = model.data_preprocessor(dict(inputs=list(torch.randint(0, 255, (2, 3, 64, 96))),
                                        data_samples=samples(num_classes)), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    loss = total_loss(losses)
    assert torch.isfinite(loss)
    loss.backward()
    if denseclip:
        assert 'loss_aux_seg' in losses
        assert model.prompt.contexts.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=list(torch.randint(0, 255, (2, 3, 64, 96))),
                                            data_samples=samples(num_classes, train=False)),
                                       False)
        out = model.predict(data['inputs'], data['data_samples'])
    assert len(out) == 2 and out[0].pred_instances.bboxes.shape[-1] == 4


@pytest.mark.parametrize('leaf, clip, neck', [
    ('mask-rcnn_clip-r50_fpn_1x_coco.py', TINY_RN, dict(in_channels=[64, 128, 256, 512])),
    ('mask-rcnn_clip-vit-b16_sfp_1x_coco.py', TINY_VIT, dict(in_channels=[64])),
])
def test_stock_mask_rcnn_with_a_clip_backbone_trains_and_predicts(leaf, clip, neck, tmp_path):
    """mmdet's own Mask R-CNN R50-FPN config with CLIPResNet / CLIPViT (+ a simple feature
    pyramid) swapped in; a tiny random CLIP trains a few steps and predicts masks."""
    cfg = Config.fromfile(str(CONFIGS / 'denseclip_det' / leaf))
    assert cfg.model.type == 'MaskRCNN'  # the stock detector
    assert cfg.custom_imports.imports == ['denseclip']
    path = tmp_path / 'clip.json'
    path.write_text(json.dumps(clip))
    model_cfg = cfg.model.to_dict()
    model_cfg['backbone'].update(model=str(path), pretrained=None)
    model_cfg['neck'].update(neck)
    model = build(model_cfg)
    model.train()
    data = model.data_preprocessor(dict(inputs=list(torch.randint(0, 255, (2, 3, 64, 96))),
                                        data_samples=samples(80)), True)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    history = []
    for _ in range(4):
        losses = model.loss(data['inputs'], data['data_samples'])
        loss = total_loss(losses)
        wrapper.update_params(loss)
        history.append(loss.item())
    assert history[-1] < history[0], history
    assert {'loss_rpn_cls', 'loss_cls', 'loss_mask'} <= set(losses)
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=list(torch.randint(0, 255, (2, 3, 64, 96))),
                                            data_samples=samples(80, train=False)), False)
        out = model.predict(data['inputs'], data['data_samples'])
    assert out[0].pred_instances.masks.shape[1:] == (64, 96)
