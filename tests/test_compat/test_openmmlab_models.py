"""mmdet and mmseg models with CLIP backbones build, train one step and predict on CPU."""
from __future__ import annotations

import json
import os

import mmdet
import mmseg
import pytest
import torch
from conftest import OPENAI_RN, TINY_VIT
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample

import denseclip  # noqa: F401  (installs the shim, registers the backbones)
from denseclip.registry import MMDET_MODELS, MODELS


def _mim_config(package, relative):
    return Config.fromfile(os.path.join(os.path.dirname(package.__file__), '.mim', 'configs',
                                        relative))


@pytest.fixture
def rn_config(tmp_path):
    path = tmp_path / 'tiny_rn.json'
    path.write_text(json.dumps(OPENAI_RN))
    return str(path)


def test_mask_rcnn_with_a_clip_resnet_trains_and_predicts(rn_config):
    torch.manual_seed(0)
    cfg = _mim_config(mmdet, 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py').model
    cfg.backbone = dict(type='CLIPResNet', model=rn_config, pretrained=None)
    cfg.neck.in_channels = [64, 128, 256, 512]  # tiny RN width 16: 4 * 16 * (1, 2, 4, 8)
    cfg.roi_head.bbox_head.num_classes = 3
    cfg.roi_head.mask_head.num_classes = 3
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MMDET_MODELS.build(cfg)
    model.init_weights()

    images = torch.randint(0, 255, (2, 3, 96, 128)).float()
    samples = []
    for i in range(2):
        sample = DetDataSample()
        sample.set_metainfo(dict(img_shape=(96, 128), ori_shape=(96, 128), pad_shape=(96, 128),
                                 scale_factor=(1.0, 1.0), batch_input_shape=(96, 128)))
        masks = torch.zeros(1, 96, 128, dtype=torch.bool)
        masks[0, 20:60, 30 + 10 * i:90] = True
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[30.0 + 10 * i, 20.0, 90.0, 60.0]]), labels=torch.tensor([i]),
            masks=BitmapMasks(masks.numpy(), 96, 128))
        samples.append(sample)
    data = model.data_preprocessor(dict(inputs=list(images), data_samples=samples), True)
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v.sum() for k, v in losses.items() if 'loss' in k and torch.is_tensor(v))
    assert torch.isfinite(total) and {'loss_rpn_cls', 'loss_cls', 'loss_mask'} <= set(losses)
    optim.zero_grad()
    total.backward()
    grad = model.backbone.visual.conv1.weight.grad  # the stem (bn3 of each block starts at 0)
    assert grad is not None and grad.abs().sum() > 0  # the CLIP backbone is trained
    optim.step()

    model.eval()
    cfg.test_cfg.rcnn.score_thr = 0.0  # random weights: keep every detection
    with torch.no_grad():
        data = model.data_preprocessor(dict(inputs=list(images), data_samples=samples), False)
        out = model.predict(data['inputs'], data['data_samples'])
    assert len(out) == 2 and out[0].pred_instances.bboxes.shape[1] == 4
    assert out[0].pred_instances.masks.shape[1:] == (96, 128)


def test_encoder_decoder_with_a_clip_vit_trains_and_predicts(tmp_path):
    path = tmp_path / 'tiny_vit.json'
    path.write_text(json.dumps(TINY_VIT))
    cfg = _mim_config(mmseg, '_base_/models/fpn_r50.py').model
    cfg.data_preprocessor = dict(type='SegDataPreProcessor', mean=[122.8, 116.7, 104.1],
                                 std=[68.5, 66.6, 70.3], bgr_to_rgb=True, size=(64, 96))
    cfg.pretrained = None  # the base config's ImageNet ResNet
    cfg.backbone = dict(type='CLIPViT', model=str(path), pretrained=None, out_indices=(0, 1))
    cfg.neck = dict(type='FPN', in_channels=[64, 64], out_channels=32, num_outs=2)
    cfg.decode_head.update(in_channels=[32, 32], in_index=[0, 1], feature_strides=[16, 16],
                           channels=16, num_classes=5, norm_cfg=dict(type='BN'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg)
    images = torch.randint(0, 255, (2, 3, 64, 96)).float()
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        sample.set_metainfo(dict(img_shape=(64, 96), ori_shape=(64, 96), pad_shape=(64, 96)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 5, (1, 64, 96)))
        samples.append(sample)
    data = model.data_preprocessor(dict(inputs=list(images), data_samples=samples), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    losses['decode.loss_ce'].backward()
    assert model.backbone.visual.conv1.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    assert out[0].pred_sem_seg.data.shape == (1, 64, 96)
    assert out[0].pred_sem_seg.data.max() < 5
