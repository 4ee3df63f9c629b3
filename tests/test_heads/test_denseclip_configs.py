"""Every DenseCLIP and fpn_clip config builds at its real geometry (random weights), takes a
training step and segments: the channel arithmetic of each config (FPN inputs 2048 + K or
768 + K, the score map's level, the context decoder's width) meets the real backbones."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.datasets import ADE20KDataset
from mmseg.structures import SegDataSample

from denseclip.registry import MODELS
from denseclip.utils import check_model_config

CONFIGS = Path(__file__).resolve().parents[2] / 'configs'
LEAVES = sorted(p.name for p in (CONFIGS / 'denseclip').glob('*_ade20k-*.py'))


def to_bn(cfg):
    """SyncBN -> BN everywhere: one process."""
    if isinstance(cfg, dict):
        return {k: ('BN' if k == 'type' and v == 'SyncBN' else to_bn(v)) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(to_bn(v) for v in cfg)
    return cfg


def test_every_row_of_the_readme_table_has_a_config():
    assert LEAVES == sorted(f'{m}_{b}_ade20k-{c}.py' for m in ('denseclip', 'fpn-clip')
                            for b, c in (('r50', '512x512'), ('r101', '512x512'),
                                         ('vit-b16', '640x640')))


@pytest.mark.parametrize('leaf', LEAVES)
def test_config_builds_trains_a_step_and_segments(leaf):
    cfg = Config.fromfile(str(CONFIGS / 'denseclip' / leaf))
    check_model_config(cfg.model, leaf)
    assert cfg.train_dataloader.dataset.type == 'ADE20KDataset'
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult == 0.1
    model_cfg = to_bn(cfg.model.to_dict())
    model_cfg['backbone']['pretrained'] = None  # random weights: no download
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(model_cfg))  # attribute access, as the Runner gives
    classes = ADE20KDataset.METAINFO['classes']
    if cfg.model.type == 'OpenVocabEncoderDecoder':
        assert model.vocabulary.class_names == list(classes)
        assert all(not p.requires_grad for p in model.text_encoder.parameters())
    size = 64  # any multiple of 32; the real crops are 512 / 640
    labels = torch.randint(0, len(classes), (2, 1, size, size))
    samples = [SegDataSample(gt_sem_seg=PixelData(data=lab),
                             metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
               for lab in labels]
    model.train()
    losses = model.loss(torch.randn(2, 3, size, size), samples)
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(loss)
    loss.backward()
    if cfg.model.type == 'OpenVocabEncoderDecoder':
        assert {'decode.loss_ce', 'aux_identity.loss_ce'} <= set(losses)
        assert model.prompt.contexts.grad.abs().sum() > 0  # through the frozen text tower
    model.eval()
    with torch.no_grad():
        out = model.predict(torch.randn(1, 3, size, 96), [SegDataSample(
            metainfo=dict(img_shape=(size, 96), ori_shape=(size, 96)))])
    assert out[0].seg_logits.data.shape == (len(classes), size, 96)
