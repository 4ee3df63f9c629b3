"""DenseCLIP detectors: the box rasterisation and the auxiliary loss by hand, the score map
joined to x4 against a plain re-implementation of the released detector (with a checkpoint in
the released key layout, through the converter), a few training steps, bad input."""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import mmdet
import pytest
import torch
import torch.nn.functional as F
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.structures import InstanceData

from denseclip.engine import load_checkpoint_strict
from denseclip.models.backbones.denseclip import crop_pos_embed
from denseclip.models.detectors import DetVocabularyCheckHook
from denseclip.models.detectors.denseclip import box_bce_loss, box_targets
from denseclip.registry import MMDET_MODELS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests' / 'test_heads'))  # the released segmentor's reference
import denseclip_reference as ref  # noqa: E402

NAMES = ['car', 'person', 'traffic light']
K = len(NAMES)
# the reference's tiny sizes (denseclip_reference.RESNET/COMMON), positional table 4 x 4
TEXT = dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2)
CLIP_RN = dict(embed_dim=32, quick_gelu=True, text_cfg=TEXT,
               vision_cfg=dict(image_size=64, layers=(1, 1, 1, 1), width=8, head_width=8))
RESOLUTION = 128


@pytest.fixture(autouse=True)
def mmdet_scope():
    """mmdet heads built directly (the reference's) find their coders under mmdet's scope,
    whatever scope an earlier test left."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


@pytest.fixture
def clip_json(tmp_path):
    path = tmp_path / 'rn.json'
    path.write_text(json.dumps(CLIP_RN))
    return str(path)


def mim_model(relative: str) -> Config:
    return Config.fromfile(os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs',
                                        '_base_', 'models', relative)).model


def detector_cfg(kind: str, clip_json: str, names=NAMES) -> Config:
    """A tiny DenseCLIP RetinaNet / Mask R-CNN over mmdet's own R50-FPN model configs."""
    k = len(names)
    cfg = mim_model('retinanet_r50_fpn.py' if kind == 'retinanet'
                    else 'mask-rcnn_r50_fpn.py')
    cfg.type = 'DenseCLIPRetinaNet' if kind == 'retinanet' else 'DenseCLIPMaskRCNN'
    cfg.backbone = dict(type='CLIPResNetWithAttention', model=clip_json,
                        input_resolution=RESOLUTION, pos_embed='crop')
    cfg.update(vocabulary=names, text_encoder=dict(context_length=13),
               prompt=dict(type='ContextPrompt'),
               context_decoder=dict(type='ContextDecoder', transformer_width=16,
                                    transformer_heads=2, transformer_layers=2, visual_dim=32))
    cfg.neck.update(in_channels=[32, 64, 128, 256 + k], out_channels=16)
    if kind == 'retinanet':
        cfg.bbox_head.update(num_classes=k, in_channels=16, feat_channels=16, stacked_convs=1)
        cfg.test_cfg.score_thr = 0.0
    else:
        cfg.rpn_head.update(in_channels=16, feat_channels=16)
        cfg.roi_head.bbox_roi_extractor.out_channels = 16
        cfg.roi_head.bbox_head.update(in_channels=16, fc_out_channels=32, num_classes=k)
        cfg.roi_head.mask_roi_extractor.out_channels = 16
        cfg.roi_head.mask_head.update(in_channels=16, conv_out_channels=16, num_classes=k)
        cfg.test_cfg.rcnn.score_thr = 0.0
    return cfg


def build(cfg, seed: int = 0):
    init_default_scope('mmdet')
    torch.manual_seed(seed)
    return MMDET_MODELS.build(cfg)


def batch(model, train: bool = True):
    """Two 96 x 128 images with a few boxes (and masks), through the data preprocessor."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (2, 3, 96, 128), generator=gen).float()
    boxes = [torch.tensor([[10.0, 8.0, 70.0, 60.0], [64.0, 30.0, 120.0, 90.0]]),
             torch.tensor([[20.0, 20.0, 100.0, 80.0]])]
    labels = [torch.tensor([0, 2]), torch.tensor([1])]
    samples = []
    for b, lab in zip(boxes, labels):
        masks = torch.zeros(len(b), 96, 128, dtype=torch.bool)
        for m, (x1, y1, x2, y2) in zip(masks, b.long()):
            m[y1:y2, x1:x2] = True
        sample = DetDataSample(metainfo=dict(img_shape=(96, 128), ori_shape=(96, 128),
                                             scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=b, labels=lab,
                                           masks=BitmapMasks(masks.numpy(), 96, 128))
        samples.append(sample)
    return model.data_preprocessor(dict(inputs=list(images), data_samples=samples), train)


def total_loss(losses: dict) -> torch.Tensor:
    return sum(v.sum() if torch.is_tensor(v) else sum(x.sum() for x in v)
               for k, v in losses.items() if 'loss' in k)


def test_box_targets_by_hand():
    """32 x 48 input, stride 4 -> an 8 x 12 grid. Corners /4, truncated, clamped to the last
    row/column, ends exclusive (build_seg_target)."""
    boxes = [torch.tensor([[4.0, 5.0, 19.9, 13.0],  # -> cols 1..3, rows 1..2, class 1
                           [8.0, 4.0, 16.0, 16.0],  # -> cols 2..3, rows 1..3, class 0
                           [40.0, 24.0, 48.0, 32.0]])]  # x2, y2 clamp to 11, 7: col 10, row 6
    labels = [torch.tensor([1, 0, 0])]
    target, weight = box_targets(boxes, labels, num_classes=3, size=(8, 12))
    want = torch.zeros(3, 8, 12)
    want[1, 1:3, 1:4] = 1
    want[0, 1:4, 2:4] = 1
    want[0, 6, 10] = 1
    torch.testing.assert_close(target[0], want)
    torch.testing.assert_close(weight[0, 0], want.amax(0))
    assert target.shape == (1, 3, 8, 12) and weight.shape == (1, 1, 8, 12)
    empty, w = box_targets([torch.zeros(0, 4)], [torch.zeros(0, dtype=torch.long)], 3, (8, 12))
    assert empty.sum() == 0 and w.sum() == 0


def test_aux_loss_is_the_released_bce_over_the_box_union():
    """compute_seg_loss: BCE(sigmoid(s), T, weight=W expanded to K, sum) / sum(W expanded)."""
    gen = torch.Generator().manual_seed(0)
    score = torch.randn(2, 3, 8, 12, generator=gen) * 5
    boxes = [torch.tensor([[4.0, 5.0, 30.0, 20.0]]), torch.tensor([[0.0, 0.0, 12.0, 8.0]])]
    labels = [torch.tensor([2]), torch.tensor([0])]
    target, weight = box_targets(boxes, labels, 3, (8, 12))
    mask = weight.expand(-1, 3, -1, -1)
    # in float64: float32's BCE(sigmoid(s)) loses digits where the sigmoid saturates
    want = F.binary_cross_entropy(torch.sigmoid(score.double()), target.double(),
                                  weight=mask.double(), reduction='sum') / mask.sum()
    torch.testing.assert_close(box_bce_loss(score, target, weight), want.float())
    # no box pixel in the batch: zero, not the released 0 / 0
    score.requires_grad_(True)
    zero = box_bce_loss(score, target, torch.zeros_like(weight))
    zero.backward()
    assert zero.item() == 0.0 and score.grad.abs().sum() == 0


def test_crop_pos_embed_by_hand():
    """The [mean] row, then rows 0..h-1 and columns 0..w-1 of the n x n table, row-major."""
    table = torch.arange(1 + 16, dtype=torch.float32)[:, None].repeat(1, 2)  # (1 + 4*4, 2)
    out = crop_pos_embed(table, (3, 2))
    torch.testing.assert_close(out[:, 0], torch.tensor([0., 1, 2, 5, 6, 9, 10]))
    with pytest.raises(ValueError, match=r'grid \(5, 2\) exceeds the 4x4 .* at least 160'):
        crop_pos_embed(table, (5, 2))


def released_detection_state(seed: int = 1) -> dict[str, torch.Tensor]:
    """Random weights in the released DenseCLIP_RetinaNet ``state_dict()`` layout: the
    segmentor's backbone / text / context-decoder keys (denseclip_reference) at input
    resolution 128, mmdet's FPN and RetinaHead keys (the same names in mmdet 2.17)."""
    state = ref.released_state_dict('resnet', num_classes=K, seed=seed,
                                    input_resolution=RESOLUTION)
    state = {k: v for k, v in state.items() if not k.startswith(('neck.', 'decode_head.'))}
    from mmdet.models.dense_heads import RetinaHead
    from mmdet.models.necks import FPN
    cfg = detector_cfg('retinanet', 'unused')
    gen = torch.Generator().manual_seed(seed)
    for prefix, module in (('neck.', FPN(**{k: v for k, v in cfg.neck.items() if k != 'type'})),
                           ('bbox_head.', RetinaHead(**{k: v for k, v in cfg.bbox_head.items()
                                                        if k != 'type'}))):
        for key, value in module.state_dict().items():
            state[prefix + key] = torch.randn(value.shape, generator=gen) * 0.1
    assert {'bbox_head.retina_cls.weight', 'neck.fpn_convs.4.conv.weight'} <= set(state)
    return state


def released_score_levels(state, images: torch.Tensor) -> list[torch.Tensor]:
    """DenseCLIP_RetinaNet.extract_feat before the neck, in plain PyTorch: the reference's
    ResNet stages, the detection AttentionPool2d (positional table *cropped* to the grid,
    detection/denseclip/models.py@5eda47f), compute_text_features, score_map3 / tau into x4."""
    levels, _, _ = ref._resnet(state, images)  # the stages do not use the positional table
    x = levels[-1]
    b, c, h, w = x.shape
    tok = x.flatten(2).transpose(1, 2)
    tok = torch.cat([tok.mean(1, keepdim=True), tok], 1)
    pos = state['backbone.attnpool.positional_embedding']
    n = int((pos.shape[0] - 1) ** 0.5)
    spatial = pos[1:].reshape(n, n, -1)[:h, :w].reshape(h * w, -1)
    tok = tok + torch.cat([pos[:1], spatial])
    q, k, v = (ref._lin(state, f'backbone.attnpool.{p}_proj.', tok) for p in 'qkv')
    out = ref._lin(state, 'backbone.attnpool.c_proj.', ref._attend(q, k, v, ref.ATTNPOOL_HEADS))
    g, z = out[:, 0], out[:, 1:].transpose(1, 2).reshape(b, -1, h, w)
    cfg = ref._sizes('resnet', {})
    text = ref._text(state, ref.released_tokenize(NAMES), cfg).expand(b, -1, -1)
    visual = torch.cat([g[:, :, None], z.flatten(2)], 2).transpose(1, 2)
    text = text + state['gamma'] * ref._context_decoder(state, text, visual,
                                                        cfg['transformer_heads'])
    score = torch.einsum('bchw,bkc->bkhw', F.normalize(z, dim=1), F.normalize(text, dim=2))
    return [*levels[:3], torch.cat([levels[3], score / 0.07], 1)]


def converter():
    spec = importlib.util.spec_from_file_location(
        'denseclip_det_converter', ROOT / 'tools/model_converters/denseclip_det.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_converted_release_joins_the_released_score_map_to_x4(clip_json, tmp_path):
    """The released key layout -> converter -> strict load; s / τ joined to x4, the FPN and
    the RetinaHead outputs equal the plain re-implementation's on a non-square grid."""
    state = released_detection_state()
    torch.save({'state_dict': state, 'meta': {'CLASSES': NAMES, 'epoch': 12}},
               tmp_path / 'released.pth')
    assert converter().main([str(tmp_path / 'released.pth'), str(tmp_path / 'ours.pth')]) == 0
    model = build(detector_cfg('retinanet', clip_json))
    load_checkpoint_strict(model, tmp_path / 'ours.pth')
    model.eval()
    images = torch.randn(2, 3, 96, 64, generator=torch.Generator().manual_seed(0))  # grid 3x2
    want = released_score_levels(state, images)
    with torch.no_grad():
        got = model.score_levels(images)
        neck = model.extract_feat(images)
        cls_scores, _ = model.bbox_head(neck)
    close = dict(atol=5e-5, rtol=1e-4)
    for g, w in zip(got.levels, want):
        torch.testing.assert_close(g, w, **close)
    torch.testing.assert_close(got.score, want[3][:, 256:], **close)
    from mmdet.models.dense_heads import RetinaHead
    from mmdet.models.necks import FPN
    cfg = detector_cfg('retinanet', clip_json)
    fpn = FPN(**{k: v for k, v in cfg.neck.items() if k != 'type'}).eval()
    fpn.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith('neck.')})
    head = RetinaHead(**{k: v for k, v in cfg.bbox_head.items() if k != 'type'}).eval()
    head.load_state_dict({k[10:]: v for k, v in state.items() if k.startswith('bbox_head.')})
    with torch.no_grad():
        want_scores, _ = head(fpn(want))
    for g, w in zip(cls_scores, want_scores):
        torch.testing.assert_close(g, w, **close)


def test_converter_rejects_foreign_keys():
    state = {'backbone.conv1.weight': torch.zeros(1), 'decode_head.conv_seg.weight': torch.zeros(1)}
    with pytest.raises(KeyError, match=r"no released DenseCLIP detection module: "
                                       r"\['decode_head.conv_seg.weight'\]"):
        converter().convert(state)


@pytest.mark.parametrize('kind', ['retinanet', 'mask-rcnn'])
def test_a_few_steps_reduce_the_loss(kind, clip_json):
    model = build(detector_cfg(kind, clip_json))
    model.init_weights()
    model.train()
    data = batch(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-3)
    history = []
    for step in range(8):
        losses = model.loss(data['inputs'], data['data_samples'])
        loss = total_loss(losses)
        optim.zero_grad()
        loss.backward()
        if step == 0:
            assert 'loss_aux_seg' in losses and torch.isfinite(loss)
            assert model.prompt.contexts.grad.abs().sum() > 0  # through the frozen text tower
            assert model.gamma.grad.abs().sum() > 0
            assert all(p.grad is None for p in model.text_encoder.parameters())
        optim.step()
        history.append(loss.item())
    assert history[-1] < 0.8 * history[0], history
    model.eval()
    with torch.no_grad():
        data = batch(model, train=False)
        out = model.predict(data['inputs'], data['data_samples'])
    assert len(out) == 2 and out[0].pred_instances.bboxes.shape[1] == 4
    assert int(out[0].pred_instances.labels.max()) < K


def test_aux_loss_of_the_detector_is_the_box_bce_on_the_upsampled_score(clip_json):
    model = build(detector_cfg('retinanet', clip_json)).train()
    data = batch(model)
    inputs, samples = data['inputs'], data['data_samples']
    with torch.no_grad():
        model.eval()  # no dropout in the context decoder: the same score map twice
        losses = model.loss(inputs, samples)
        score = model.score_levels(inputs).score
    H, W = inputs.shape[-2:]
    up = F.interpolate(score, size=(H // 4, W // 4), mode='bilinear', align_corners=False)
    target, weight = box_targets([s.gt_instances.bboxes for s in samples],
                                 [s.gt_instances.labels for s in samples], K, (H // 4, W // 4))
    torch.testing.assert_close(losses['loss_aux_seg'], box_bce_loss(up, target, weight))


def test_bad_input_is_refused(clip_json):
    cfg = detector_cfg('retinanet', clip_json)
    with pytest.raises(ValueError, match='DenseCLIPRetinaNet: vocabulary is empty'):
        build(dict(cfg, vocabulary=[]))
    with pytest.raises(ValueError, match=r"class \('person', 'pedestrian'\) has synonyms"):
        build(dict(cfg, vocabulary=['car', ['person', 'pedestrian'], 'traffic light']))
    with pytest.raises(ValueError, match=r'vocabulary has 2 classes but the heads predict '
                                         r'num_classes=3'):
        build(dict(cfg, vocabulary=NAMES[:2]))
    with pytest.raises(ValueError, match="class 'a very long class name' is 5 BPE tokens"):
        build(dict(cfg, vocabulary=['car', 'person', 'a very long class name'])).score_levels(
            torch.zeros(1, 3, 64, 64))
    bad_neck = detector_cfg('retinanet', clip_json)
    bad_neck.neck.in_channels = [32, 64, 128, 256]
    with pytest.raises(ValueError, match=r'neck expects in_channels=\[32, 64, 128, 256\] but '
                                         r'the levels have \[32, 64, 128, 259\]'):
        build(bad_neck).score_levels(torch.zeros(1, 3, 64, 64))
    model = build(cfg)
    data = batch(model)
    data['data_samples'][0].gt_instances.labels[0] = K
    with pytest.raises(ValueError, match='label 3 in a training batch, but the vocabulary has 3'):
        model.loss(data['inputs'], data['data_samples'])
    # a class list that is not the dataset's: the runner's hook stops the run
    runner = SimpleNamespace(model=model, train_dataloader=SimpleNamespace(
        dataset=SimpleNamespace(metainfo=dict(classes=('car', 'traffic light', 'person')))))
    with pytest.raises(ValueError, match='does not match the train_dataloader dataset'):
        DetVocabularyCheckHook().before_train(runner)
    runner.train_dataloader.dataset.metainfo['classes'] = tuple(NAMES)
    DetVocabularyCheckHook().before_train(runner)
