"""PixelCLIPSegmentor on a tiny CLIP: the trained set and lr multipliers (paramwise_cfg), the EMA
teacher inside training steps, a few iterations reduce the loss, the DINO k-means source,
the released-checkpoint converter, every config builds, bad input."""
from __future__ import annotations

import copy
import glob
import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_CONVNEXT, TINY_VIT, make_clip
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.structures import SegDataSample

from denseclip.engine import load_checkpoint_strict
from denseclip.models.dense.base import NUM_PREFIX_TOKENS
from denseclip.models.mask_sources import DINOKMeansMasks
from denseclip.registry import MODELS, TRANSFORMS

ROOT = Path(__file__).resolve().parents[2]
CLIP_MEAN = [122.7709383, 116.7460125, 104.09373615]
CLIP_STD = [68.5005327, 66.6321579, 70.3231630]


def tiny_cfg(config: Path, weights: Path | None, **overrides) -> dict:
    cfg = dict(
        type='PixelCLIPSegmentor',
        backbone=dict(type='CLIPViT', model=str(config),
                      pretrained=None if weights is None else str(weights),
                      dense=dict(type='CATSegAttention')),
        clip_resolution=(32, 32),
        cluster_prompt=dict(type='LearnedClassNames', num_names=4, name_length=4),
        strong_view=None,
        decode_head=dict(type='PixelCLIPHead', conv_head=dict(type='ConvHead',
                                                              channels=(16, 16, 16)),
                         mask_size=(16, 16), test_size=(8, 8)),
        prompt=dict(type='TemplatePrompt', templates=['a photo of a {}.', 'a {}.']),
        vocabulary=['cat', 'dog', 'sky'],
        data_preprocessor=dict(type='mmseg.SegDataPreProcessor', mean=CLIP_MEAN, std=CLIP_STD,
                               bgr_to_rgb=True, size=(48, 48)),
        slide_crop=0)
    cfg.update(overrides)
    return cfg


def batch(n: int = 2, size: int = 48, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        masks = torch.zeros(3, size, size, dtype=torch.uint8)
        masks[0, :size // 2] = 1
        masks[1, size // 2:, :size // 3] = 1
        masks[2, size // 2:, size // 3:] = 1
        s = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
        s.gt_masks = masks
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


@pytest.fixture(autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')  # TrainableOptimWrapperConstructor is registered there


@pytest.fixture
def model(tiny_vit):
    config, weights, _ = tiny_vit
    torch.manual_seed(0)
    return MODELS.build(tiny_cfg(config, weights))


def schedule(path: str = 'configs/_base_/schedules/pixelclip_10k.py') -> dict:
    return copy.deepcopy(Config.fromfile(str(ROOT / path)).optim_wrapper.to_dict())


def test_trained_set_and_lr_multipliers(model):
    wrapper = build_optim_wrapper(model, schedule())
    names = {id(p): n for n, p in model.named_parameters()}
    lrs, decays = {}, {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            lrs[names[id(p)]] = group['lr']
            decays[names[id(p)]] = group['weight_decay']
    trained = set(lrs)
    expected_clip = {n for n, _ in model.backbone.visual.named_parameters()
                     if 'attn' in n or n == 'positional_embedding'}
    assert {n[len('backbone.visual.'):] for n in trained if n.startswith('backbone.')} \
        == expected_clip
    assert not any(n.startswith(('teacher.', 'text_encoder.')) for n in trained)
    assert not any('mlp' in n or 'ln_' in n or 'conv1' in n for n in trained
                   if n.startswith('backbone.'))
    for name, lr in lrs.items():
        if name.startswith('backbone.'):
            assert lr == pytest.approx(2e-6), name  # x0.01
        elif name.startswith('cluster_prompt.'):
            assert lr == pytest.approx(2e-3), name  # x10
        else:
            assert name.startswith('decode_head.conv_head.') and lr == pytest.approx(2e-4)
    # GroupNorm weights: no decay (WEIGHT_DECAY_NORM 0); convolutions and names: 1e-4
    assert decays['decode_head.conv_head.conv1.double_conv.1.weight'] == 0.0
    assert decays['decode_head.conv_head.conv0.weight'] == pytest.approx(1e-4)
    assert decays['cluster_prompt.names'] == pytest.approx(1e-4)
    assert wrapper.clip_grad_kwargs == dict(max_norm=0.01, norm_type=2)


def test_teacher_follows_the_student_by_ema(model):
    wrapper = build_optim_wrapper(model, dict(type='OptimWrapper',
                                              optimizer=dict(type='AdamW', lr=1e-2),
                                              constructor='TrainableOptimWrapperConstructor'))
    name = 'visual.transformer.resblocks.0.attn.in_proj_weight'
    s0 = dict(model.backbone.named_parameters())[name].detach().clone()
    torch.testing.assert_close(dict(model.teacher.named_parameters())[name], s0)
    model.train()
    model.train_step(batch(), wrapper)  # EMA of s0 into t0 = s0: unchanged; then a step
    s1 = dict(model.backbone.named_parameters())[name].detach().clone()
    assert not torch.allclose(s1, s0)
    torch.testing.assert_close(dict(model.teacher.named_parameters())[name], s0)
    model.train_step(batch(seed=1), wrapper)  # t = 0.999 s0 + 0.001 s1
    torch.testing.assert_close(dict(model.teacher.named_parameters())[name],
                               0.999 * s0 + 0.001 * s1)
    assert not any(p.requires_grad for p in model.teacher.parameters())


def test_a_few_iterations_reduce_the_loss(model):
    cfg = schedule()
    cfg['optimizer']['lr'] = 2e-3
    cfg['paramwise_cfg']['custom_keys']['backbone']['lr_mult'] = 1.0
    cfg.pop('clip_grad')
    wrapper = build_optim_wrapper(model, cfg)
    model.train()
    data = batch(n=2)
    losses = [model.train_step(data, wrapper)['loss'].item() for _ in range(12)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) / 3 < losses[0] * 0.9, losses


def test_strong_view_and_cutout_remove_masks(model):
    from denseclip.models.heads.pixelclip import StrongView

    torch.manual_seed(0)
    view = StrongView()
    pixels = torch.rand(2, 3, 40, 60) * 255
    strong, boxes = view(pixels)
    assert strong.shape == pixels.shape and boxes.shape == (2, 40, 60)
    for i in range(2):
        area = boxes[i].float().mean()
        assert 0.01 <= area <= 0.25 + 1e-6  # 10-50% of each side
        assert (strong[i][:, boxes[i]] == 0).all()  # black cutout
    # the segmentor removes the cutout from the masks: the loss still runs
    model.strong_view = view
    model.train()
    losses = model.loss(model.data_preprocessor(batch(), True)['inputs'], batch()['data_samples'])
    assert torch.isfinite(losses['loss_masks'])


def test_predict_is_cosine_without_head(model):
    """Test scores = cos(student features at 8x8, template-averaged class texts)."""
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    dense = model.backbone.forward_dense(x)
    _, text = model.text_for()
    scores = model.decode_head.predict(dense, text)
    feats = F.normalize(F.interpolate(dense.feats, size=(8, 8), mode='bilinear'), dim=1)
    classes = F.normalize(F.normalize(text, dim=-1).mean(1), dim=-1)
    torch.testing.assert_close(scores, torch.einsum('qd,bdhw->bqhw', classes, feats))
    out = model.predict(torch.randn(1, 3, 40, 56), [SegDataSample(
        metainfo=dict(img_shape=(40, 56), ori_shape=(40, 56)))])
    assert out[0].pred_sem_seg.data.shape == (1, 40, 56)


def test_dino_kmeans_masks_partition_the_image():
    source = DINOKMeansMasks(dino=dict(type='DINOProxy', model='vit_small_patch16_224.dino',
                                       model_kwargs=dict(depth=1, embed_dim=64, num_heads=2)),
                             num_clusters=4)
    masks = source(torch.randn(2, 3, 64, 80))
    assert len(masks) == 2
    for m in masks:
        assert m.shape == (4, 64, 80) and m.dtype == torch.bool
        torch.testing.assert_close(m.sum(0), torch.ones(64, 80, dtype=torch.long))
        # constant on each 16x16 patch (nearest-upsampled cluster map)
        assert (m.view(4, 4, 16, 5, 16) == m.view(4, 4, 16, 5, 16)[:, :, :1, :, :1]).all()


def test_dino_source_trains_and_stays_out_of_the_state_dict(tiny_vit):
    config, weights, _ = tiny_vit
    dino = dict(type='DINOKMeansMasks', num_clusters=4,
                dino=dict(type='DINOProxy', model='vit_small_patch16_224.dino',
                          model_kwargs=dict(depth=1, embed_dim=64, num_heads=2)))
    model = MODELS.build(tiny_cfg(config, weights, mask_source=dino))
    model.train()
    data = batch()
    for s in data['data_samples']:
        del s.gt_masks  # the DINO source makes its own
    data = model.data_preprocessor(data, True)
    assert torch.isfinite(model.loss(data['inputs'], data['data_samples'])['loss_masks'])
    state = model.state_dict()
    assert not any(k.startswith('mask_source.') for k in state)
    assert any(k.startswith('teacher.') for k in state)
    model.load_state_dict(state, strict=True)


def test_bad_input(model, tiny_vit):
    config, weights, _ = tiny_vit
    x = torch.randn(1, 3, 48, 48)
    with pytest.raises(KeyError, match='without gt_masks'):
        model.loss(x, [SegDataSample()])
    s = SegDataSample()
    s.gt_masks = torch.zeros(2, 64, 48)
    with pytest.raises(ValueError, match=r'gt_masks \(2, 64, 48\)'):
        model.loss(x, [s])
    with pytest.raises(ValueError, match='visual_finetune'):
        MODELS.build(tiny_cfg(config, weights, clip_finetune='attention_qv'))
    with pytest.raises(ValueError, match="'attention' or 'full'"):
        MODELS.build(tiny_cfg(config, weights, visual_finetune='qv'))


# ----------------------------------------------------------------------------- converter
def load_converter():
    spec = importlib.util.spec_from_file_location(
        'pixelclip_converter', ROOT / 'tools' / 'model_converters' / 'pixelclip.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def released_layout(state: dict) -> dict:
    """Our keys written the way the released PixelCLIP saves them (plus its extras)."""
    out = {}
    for k, v in state.items():
        for ours, theirs in (('backbone.visual.', 'sem_seg_head.predictor.clip_model.visual.'),
                             ('text_encoder.', 'sem_seg_head.predictor.clip_model.'),
                             ('teacher.visual.', 'teacher_encoder.visual.'),
                             ('decode_head.conv_head.', 'head.'),
                             ('cluster_prompt.names', 'sem_seg_head.predictor.prompt_tokens')):
            if k.startswith(ours):
                out[theirs + k[len(ours):]] = v
                break
        else:
            raise AssertionError(k)
    out['sem_seg_head.predictor.clip_model.logit_scale'] = torch.tensor(4.6)
    out['teacher_encoder.logit_scale'] = torch.tensor(4.6)
    out['teacher_encoder.token_embedding.weight'] = state['text_encoder.token_embedding.weight']
    out['teacher_encoder.ln_final.weight'] = state['text_encoder.ln_final.weight']
    out['dino.cls_token'] = torch.zeros(1, 1, 8)
    return out


def released_dense(clip, x: torch.Tensor) -> torch.Tensor:
    """A transcription of the released ViT dense path (third_party/model.py
    ``VisualTransformer.forward(dense=True)`` with ``forward_dense`` in the last block)."""
    v = clip.visual
    t = v.conv1(x).flatten(2).transpose(1, 2)
    t = torch.cat([v.class_embedding.expand(t.shape[0], 1, -1), t], 1) + v.positional_embedding
    t = v.ln_pre(t)
    for block in v.transformer.resblocks[:-1]:
        t = block(t)
    block = v.transformer.resblocks[-1]
    y = F.linear(block.ln_1(t), block.attn.in_proj_weight, block.attn.in_proj_bias)
    val = F.linear(y.chunk(3, dim=-1)[2], block.attn.out_proj.weight, block.attn.out_proj.bias)
    z = val + t[:, :1]
    z = z + block.mlp(block.ln_2(z))
    out = v.ln_post(z) @ v.proj  # (B, 1+N, E)
    side = int((out.shape[1] - 1) ** 0.5)
    return out[:, NUM_PREFIX_TOKENS:].transpose(1, 2).reshape(x.shape[0], -1, side, side)


def test_converter_round_trip_same_outputs(model, tmp_path):
    converter = load_converter()
    torch.manual_seed(3)
    ours = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
            for k, v in model.state_dict().items()}
    src, dst = tmp_path / 'model_final.pth', tmp_path / 'ours.pth'
    torch.save(dict(model=released_layout(ours), iteration=10000), src)
    assert converter.main([str(src), str(dst)]) == 0
    load_checkpoint_strict(model, dst)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, ours[k])
    # same outputs: the released dense path on an open_clip CLIP holding the released weights
    released = torch.load(src, weights_only=True)['model']
    clip = make_clip(TINY_VIT)
    prefix = 'sem_seg_head.predictor.clip_model.'
    clip_state = {k[len(prefix):]: v for k, v in released.items() if k.startswith(prefix)}
    clip_state['attn_mask'] = clip.attn_mask
    clip.load_state_dict(clip_state, strict=False)
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    torch.testing.assert_close(model.backbone.forward_dense(x).feats, released_dense(clip, x),
                               atol=1e-5, rtol=1e-5)


def test_converter_rejects_unknown_keys(tmp_path, capsys):
    converter = load_converter()
    src = tmp_path / 'bad.pth'
    torch.save(dict(model={'sem_seg_head.predictor.transformer.x': torch.zeros(1)}), src)
    assert converter.main([str(src), str(tmp_path / 'out.pth')]) == 1
    assert 'PixelCLIP' in capsys.readouterr().err


# ----------------------------------------------------------------------------- configs
CONFIGS = sorted(glob.glob(str(ROOT / 'configs' / 'pixelclip' / '*.py')))


@pytest.mark.parametrize('path', CONFIGS, ids=[Path(p).stem for p in CONFIGS])
def test_config_builds(path, tmp_path):
    cfg = Config.fromfile(path)
    backbone = cfg.model.backbone
    tiny = tmp_path / 'tiny.json'
    if backbone.type == 'CLIPConvNeXt':
        tiny.write_text(json.dumps(TINY_CONVNEXT))
    else:
        tiny.write_text(json.dumps(TINY_VIT))
    backbone.update(model=str(tiny), pretrained=None)
    if cfg.model.get('mask_source'):
        cfg.model.mask_source.dino.update(pretrained=None,
                                          model_kwargs=dict(depth=1, embed_dim=64, num_heads=2))
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'PixelCLIPSegmentor'
    for loader in ('train_dataloader', 'test_dataloader'):
        for step in cfg.get(loader, {}).get('dataset', {}).get('pipeline', []):
            TRANSFORMS.get(step['type'].split('.')[-1]) or TRANSFORMS.get(step['type'])
    if 'optim_wrapper' in cfg:
        build_optim_wrapper(model, cfg.optim_wrapper)


def test_converter_convnext_same_outputs(tmp_path):
    """The ConvNeXt-B layout (open_clip TimmModel: visual.trunk / visual.head) converts too, and
    the dense features equal the released path: trunk.forward_features -> head.norm -> head."""
    converter = load_converter()
    config = tmp_path / 'tiny_convnext.json'
    config.write_text(json.dumps(TINY_CONVNEXT))
    cfg = tiny_cfg(config, None, visual_finetune='full', clip_resolution=(64, 64))
    cfg['backbone'] = dict(type='CLIPConvNeXt', model=str(config), pretrained=None)
    cfg['decode_head']['eps'] = 1.0
    model = MODELS.build(cfg).eval()
    torch.manual_seed(4)
    ours = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
            for k, v in model.state_dict().items()}
    src, dst = tmp_path / 'model_final.pth', tmp_path / 'ours.pth'
    torch.save(dict(model=released_layout(ours)), src)
    assert converter.main([str(src), str(dst)]) == 0
    load_checkpoint_strict(model, dst)
    clip = make_clip(TINY_CONVNEXT)
    prefix = 'sem_seg_head.predictor.clip_model.'
    released = torch.load(src, weights_only=True)['model']
    clip_state = {k[len(prefix):]: v for k, v in released.items() if k.startswith(prefix)}
    clip_state['attn_mask'] = clip.attn_mask
    clip.load_state_dict(clip_state, strict=False)
    x = torch.randn(1, 3, 64, 96)
    feats = clip.visual.trunk.forward_features(x)
    feats = clip.visual.head(clip.visual.trunk.head.norm(feats).permute(0, 2, 3, 1))
    torch.testing.assert_close(model.backbone.forward_dense(x).feats,
                               feats.permute(0, 3, 1, 2), atol=1e-5, rtol=1e-5)
    assert all(p.requires_grad for p in model.backbone.visual.parameters())  # 'full'
