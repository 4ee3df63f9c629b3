"""The toy class-agnostic RPN (configs/ovd/rpn_toy-vit-p16_toy-det-base.py): a few steps on
base-class toy scenes reduce its loss, with the toy CLIP trunk frozen by FreezeModulesHook."""
from __future__ import annotations

from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import denseclip  # noqa: F401
from denseclip.datasets.toy_det import ToyDetDataset
from denseclip.models.detectors.regionclip import FreezeModulesHook
from denseclip.registry import MMDET_MODELS
from denseclip.toy.instances import TOY_DET_BASE_CLASSES

CONFIG = Path(__file__).resolve().parents[2] / 'configs/ovd/rpn_toy-vit-p16_toy-det-base.py'


def test_toy_rpn_steps_reduce_the_loss(tmp_path):
    cfg = Config.fromfile(str(CONFIG))
    assert list(cfg.train_dataloader.dataset.metainfo.classes) == list(TOY_DET_BASE_CLASSES)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MMDET_MODELS.build(cfg.model)
        ds = ToyDetDataset(generate=dict(num_images=4, seed=1, split='train'),
                           data_root=str(tmp_path / 'toy'),
                           metainfo=dict(classes=TOY_DET_BASE_CLASSES),
                           pipeline=cfg.train_pipeline[:3] + cfg.train_pipeline[4:])  # no flip

        class Runner:
            pass

        runner = Runner()
        runner.model = model
        FreezeModulesHook(('backbone',)).before_train(runner)
        batch = [ds[i] for i in range(len(ds))]
        data = model.data_preprocessor(dict(inputs=[b['inputs'] for b in batch],
                                            data_samples=[b['data_samples'] for b in batch]),
                                       True)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(trainable, lr=0.02, momentum=0.9)
    model.train()
    losses = []
    for _ in range(8):
        parsed, _ = model.parse_losses(model.loss(data['inputs'], data['data_samples']))
        opt.zero_grad()
        parsed.backward()
        opt.step()
        losses.append(parsed.item())
    assert losses[-1] < 0.7 * losses[0], losses
    assert model.backbone.visual.conv1.weight.grad is None  # no backward through the trunk
