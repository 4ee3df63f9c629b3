"""CLIP-DINOiser training parts: DINO teacher, saliency, targets, losses, checkpoint helpers."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from clip_dinoiser_helpers import TINY_CLIP, TINY_DINO, write_tiny_clip, write_tiny_dino
from mmengine.runner.checkpoint import load_state_dict

import denseclip.engine  # noqa: F401  (registration)
from denseclip.clip import WeightsNotFoundError
from denseclip.engine.checkpoint import latest_checkpoint, mmengine_safe_globals
from denseclip.engine.teachers import (DINOTeacher, LastBlockQKV, attention_mass_saliency,
                                       found_seed_saliency, load_timm_vit)
from denseclip.models.segmentors.clip_dinoiser_trainer import (CLIPDINOiserTrainer,
                                                               correlation_loss,
                                                               dino_correlation_targets)


def test_dino_teacher_matches_qkv_hook(tmp_path):
    """At the native 224 grid, the teacher's q, k, v are the output of the last block's qkv
    linear in timm's own forward (what the released code hooks)."""
    path = write_tiny_dino(tmp_path)
    teacher = DINOTeacher('vit_base_patch16_224.dino', pretrained=path, model_kwargs=TINY_DINO)
    seen = {}
    teacher.vit.blocks[-1].attn.qkv.register_forward_hook(
        lambda m, i, o: seen.__setitem__('qkv', o))
    images = torch.randn(2, 3, 224, 224)
    teacher.vit(images)
    out = teacher(images)
    B, T, _ = seen['qkv'].shape
    q, k, v = seen['qkv'].reshape(B, T, 3, 2, 32).permute(2, 0, 3, 1, 4)
    for ours, ref in ((out.q, q), (out.k, k), (out.v, v)):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert out.grid == (14, 14)
    assert teacher(torch.randn(1, 3, 64, 96)).grid == (4, 6)  # resized position embedding


def test_dino_offline_error_names_the_fix(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(WeightsNotFoundError, match=r"model.dino.pretrained='/path/to/dino_"):
        load_timm_vit('vit_base_patch16_224.dino', 'timm', model_kwargs=TINY_DINO)


def _qkv(q_cls, keys, grid):
    """Two identical heads; [CLS] key zero."""
    keys = torch.cat([torch.zeros(1, keys.shape[1]), keys])  # (1+N, hd)
    q = torch.zeros_like(keys)
    q[0] = q_cls
    stack = lambda x: x[None, None].repeat(1, 2, 1, 1)  # noqa: E731  (1, 2, 1+N, hd)
    return LastBlockQKV(q=stack(q), k=stack(keys), v=stack(keys), grid=grid)


def test_found_seed_saliency_on_hand_made_keys():
    # Patches 0, 1 share a key (background), 2, 3 another; [CLS] attends to 2, 3 (objects).
    keys = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    out = _qkv(torch.tensor([0.0, 8.0]), keys, (2, 2))
    mask = found_seed_saliency(out, bkg_threshold=0.3)
    torch.testing.assert_close(mask, torch.tensor([[[[0.0, 0.0], [1.0, 1.0]]]]))


def test_attention_mass_saliency_keeps_the_attended_patch():
    keys = torch.eye(4)
    out = _qkv(torch.tensor([0.0, 0.0, 9.0, 0.0]), keys, (2, 2))  # ~all attention on patch 2
    sal = attention_mass_saliency(out, mass=0.6)
    torch.testing.assert_close(sal, torch.tensor([[[[0.0, 0.0], [1.0, 0.0]]]]))


def test_targets_and_loss_against_explicit_formulas():
    torch.manual_seed(0)
    v = torch.randn(2, 2, 1 + 6, 3)  # (B, nh, 1+N, hd)
    out = LastBlockQKV(q=v, k=v, v=v, grid=(2, 3))
    target = dino_correlation_targets(out, gamma=0.2)
    feats = v[:, :, 1:].permute(0, 2, 1, 3).reshape(2, 6, 6)  # heads concatenated
    for b in range(2):
        for i in range(6):
            for j in range(6):
                cos = F.cosine_similarity(feats[b, i], feats[b, j], dim=0)
                assert target[b, i, j] == float(cos >= 0.2)
    pred = torch.rand(2, 6, 6) * 2 - 1
    x = pred.clamp(min=0)  # released: pred_corrs[pred_corrs < 0] = 0, used as logits
    expected = (F.softplus(x) - target * x).mean()
    torch.testing.assert_close(correlation_loss(pred, target), expected)


def test_trainer_losses_and_checkpointed_state(tmp_path):
    clip, dino = write_tiny_clip(tmp_path), write_tiny_dino(tmp_path)
    width = TINY_CLIP['vision_cfg']['width']
    model = CLIPDINOiserTrainer(
        backbone=dict(type='CLIPViT', model=str(clip), pretrained=None,
                      dense=dict(type='MaskCLIPAttention')),
        dino=dict(type='DINOTeacher', model='vit_base_patch16_224.dino', pretrained=str(dino),
                  model_kwargs=TINY_DINO),
        saliency=dict(type='FOUNDSeedSaliency'),
        refiner=dict(type='CLIPDINOiserRefiner', in_channels=width, proj_channels=8))
    model.train()
    assert not model.backbone.training and not model.dino.training
    losses = model(torch.rand(2, 3, 64, 80), mode='loss')
    assert set(losses) == {'loss_corr', 'loss_bkg'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    trained = [n for n, p in model.named_parameters() if p.grad is not None]
    assert trained == ['refiner.obj_proj.weight', 'refiner.obj_proj.bias',
                       'refiner.bkg_decoder.weight', 'refiner.bkg_decoder.bias']
    # Only the heads are checkpointed; loading them back reports nothing missing.
    state = model.state_dict()
    assert list(state) == trained
    load_state_dict(model, state, strict=True)
    with pytest.raises(ValueError, match='only trains'):
        model(torch.rand(1, 3, 64, 64), mode='predict')


def test_trainer_normalises_for_the_teacher_with_its_statistics(tmp_path):
    """DINO sees ImageNet statistics by default; a teacher's mean/std (e.g. a CLIP tower's)
    replace them."""
    clip, dino = write_tiny_clip(tmp_path), write_tiny_dino(tmp_path)
    teacher = dict(type='DINOTeacher', model='vit_base_patch16_224.dino', pretrained=str(dino),
                   model_kwargs=TINY_DINO)
    common = dict(backbone=dict(type='CLIPViT', model=str(clip), pretrained=None,
                                dense=dict(type='MaskCLIPAttention')),
                  saliency=dict(type='FOUNDSeedSaliency'),
                  refiner=dict(type='CLIPDINOiserRefiner',
                               in_channels=TINY_CLIP['vision_cfg']['width'], proj_channels=8))
    inputs = torch.rand(1, 3, 64, 64)
    for stats, (mean, std) in (({}, ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))),
                               (dict(mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5)),
                                ((0.5, 0.4, 0.3), (0.2, 0.25, 0.5)))):
        model = CLIPDINOiserTrainer(dino=dict(teacher, **stats), **common)
        seen = []
        model.dino.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
        model(inputs, mode='loss')
        want = (inputs - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
        torch.testing.assert_close(seen[0], want)


def test_latest_checkpoint_falls_back_when_pointer_is_broken(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for n in (2, 10, 4):
        (tmp_path / f'iter_{n}.pth').write_bytes(b'x')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    assert latest_checkpoint(tmp_path) == str(tmp_path / 'iter_4.pth')
    (tmp_path / 'last_checkpoint').write_text('')  # killed while rewriting the pointer
    assert latest_checkpoint(tmp_path) == str(tmp_path / 'iter_10.pth')


def test_safe_globals_refuse_other_getattr(tmp_path):
    import pickle

    from mmengine.logging import HistoryBuffer

    class Evil:
        def __reduce__(self):
            return getattr, (HistoryBuffer, '__init__')

    path = tmp_path / 'evil.pth'
    torch.save({'x': Evil()}, path)
    with mmengine_safe_globals(), pytest.raises(pickle.UnpicklingError, match='__init__'):
        torch.load(path, weights_only=True)
