"""MAFT+: the mask-aware loss, POD pooling, representation compensation, CDT, the
classification and the inference arithmetic by hand; the head's gradient flow and training on a
tiny ConvNeXt CLIP; released checkpoints through the converter against a transcription of the
released forward (maft_plus_reference.py)."""
from __future__ import annotations

import copy
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_CONVNEXT, TINY_VIT, make_clip
from maft_plus_reference import ReleasedMAFTPlus, sine_pos
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import nn

from denseclip.engine import load_checkpoint_strict
from denseclip.models.backbones import CLIPViT, CLIPViTStages
from denseclip.models.heads import ContentDependentTransfer
from denseclip.models.heads.maft_plus import (
    classify,
    mask_aware_loss,
    mask_pool,
    pod_pool,
    representation_compensation_loss,
    semantic_probabilities,
)
from denseclip.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
FEAT, HEADS, LAYERS, QUERIES = 32, 8, 2, 6
NAMES = ['wall', 'car', 'tree']


def converter():
    spec = importlib.util.spec_from_file_location(
        'maft_plus_converter', ROOT / 'tools/model_converters/maft_plus.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def convnext_clip(tmp_path):
    """(config path, weights path, model) of a random tiny ConvNeXt CLIP."""
    from safetensors.torch import save_file

    path = tmp_path / 'tiny_convnext.json'
    path.write_text(json.dumps(TINY_CONVNEXT))
    model = make_clip(TINY_CONVNEXT)
    weights = tmp_path / 'tiny_convnext.safetensors'
    save_file(model.state_dict(), str(weights))
    return path, weights, model


def segmentor_cfg(config, weights, num_classes: int = 3, vocabulary=NAMES) -> dict:
    clip = dict(type='CLIPConvNeXt', model=str(config), pretrained=str(weights))
    layer = dict(embed_dims=FEAT, num_heads=HEADS, attn_drop=0.0, proj_drop=0.0,
                 dropout_layer=None, batch_first=True)
    head = dict(
        type='MAFTPlusHead', num_classes=num_classes, teacher=clip, embed_dim=32,
        in_channels=[24, 32, 48, 64], strides=[4, 8, 16, 32], feat_channels=FEAT,
        out_channels=FEAT, num_queries=QUERIES, num_transformer_feat_level=3,
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder', num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32), act_cfg=dict(type='ReLU'),
            encoder=dict(num_layers=1, layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=FEAT, num_heads=HEADS, num_levels=3,
                                   num_points=4, im2col_step=64, dropout=0.0,
                                   batch_first=True, norm_cfg=None, init_cfg=None),
                ffn_cfg=dict(embed_dims=FEAT, feedforward_channels=1024, num_fcs=2,
                             ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True))),
                init_cfg=None),
            positional_encoding=dict(num_feats=FEAT // 2, normalize=True), init_cfg=None),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=FEAT // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True, num_layers=LAYERS,
            layer_cfg=dict(self_attn_cfg=layer, cross_attn_cfg=layer,
                           ffn_cfg=dict(embed_dims=FEAT, feedforward_channels=2 * FEAT,
                                        num_fcs=2, act_cfg=dict(type='ReLU', inplace=True),
                                        ffn_drop=0.0, dropout_layer=None, add_identity=True)),
            init_cfg=None),
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                      reduction='mean', class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                       loss_weight=5.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True,
                       reduction='mean', naive_dice=True, eps=1.0, loss_weight=5.0),
        train_cfg=dict(
            num_points=256, oversample_ratio=3.0, importance_sample_ratio=0.75,
            assigner=dict(type='mmdet.HungarianAssigner', match_costs=[
                dict(type='mmdet.ClassificationCost', weight=2.0),
                dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0)]),
            sampler=dict(type='mmdet.MaskPseudoSampler')))
    return dict(type='OpenVocabEncoderDecoder', backbone=clip, decode_head=head,
                prompt=dict(type='TemplatePrompt', templates=['a photo of a {}.', 'a {}.']),
                vocabulary=vocabulary, slide_crop=0, pad_to_patch=True)


def build(cfg: dict):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    return MODELS.build(copy.deepcopy(cfg))


def samples(labels: torch.Tensor) -> list[SegDataSample]:
    out = []
    for label in labels:
        s = SegDataSample(gt_sem_seg=PixelData(data=label[None]))
        s.set_metainfo(dict(img_shape=tuple(label.shape), ori_shape=tuple(label.shape),
                            pad_shape=tuple(label.shape)))
        out.append(s)
    return out


# ----------------------------------------------------------------------------- by hand
def test_mask_aware_loss_by_hand():
    # 3 regions, 2 classes (+ void, ignored), one instance of class 1 covering the left column
    logits = torch.tensor([[[0.0, 0.0, 5.0], [2.0, 0.0, -1.0], [0.0, math.log(3.0), 0.0]]])
    mask_logits = torch.full((1, 3, 2, 2), -100.0)
    mask_logits[0, 0, :, 0] = 100.0  # region 0 = the instance: IoU 1
    mask_logits[0, 1] = 100.0  # region 1 = everything: IoU 2/4
    gt = torch.zeros(1, 2, 2)
    gt[0, :, 0] = 1
    loss = mask_aware_loss(logits, mask_logits, [torch.tensor([1])], [gt])
    p = torch.tensor([0.5, 1 / (1 + math.e ** 2), 0.75])  # softmax over the 2 classes, class 1
    iou = torch.tensor([1.0, 0.5, 0.0])  # min-max over (1, 0.5, 0)
    expected = F.smooth_l1_loss(p, iou)
    torch.testing.assert_close(loss, expected, atol=1e-6, rtol=1e-6)
    # SmoothL1 by hand: |d| < 1 everywhere -> mean of d^2 / 2
    d = p - iou
    torch.testing.assert_close(loss, (d ** 2 / 2).mean(), atol=1e-6, rtol=1e-6)


def test_mask_aware_loss_pools_instances_of_every_image_and_resizes_masks():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, requires_grad=True)
    mask_logits = torch.randn(2, 4, 4, 4)
    gts = [torch.rand(2, 8, 8).round(), torch.rand(1, 8, 8).round()]
    labels = [torch.tensor([0, 1]), torch.tensor([1])]
    loss = mask_aware_loss(logits, mask_logits, labels, gts)
    preds, targets = [], []
    for b in range(2):
        sig = F.interpolate(mask_logits[b:b + 1].sigmoid(), size=(8, 8), mode='bilinear')[0]
        for c, g in zip(labels[b], gts[b]):
            inter = (sig * g).sum((1, 2))
            iou = inter / (g.sum() + sig.sum((1, 2)) - inter + 1e-7)
            targets.append((iou - iou.min()) / (iou.max() - iou.min() + 1e-8))
            preds.append(logits[b, :, :2].softmax(-1)[:, c])
    expected = F.smooth_l1_loss(torch.stack(preds), torch.stack(targets))
    torch.testing.assert_close(loss, expected)
    loss.backward()  # gradients reach the class logits only (the IoUs are targets)
    assert logits.grad[..., 2].abs().max() == 0 and logits.grad.abs().sum() > 0
    empty = mask_aware_loss(logits, mask_logits, [torch.tensor([])] * 2,
                            [torch.zeros(0, 8, 8)] * 2)
    assert empty.item() == 0 and empty.requires_grad


def test_pod_pool_by_hand():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    pooled = pod_pool(x, (1, 2))
    # scale 1: the 4x4 mean 7.5, summed over H and over W (one cell each)
    # scale 2: 2x2 means [[2.5, 4.5], [10.5, 12.5]]; sum over H -> [13, 17], over W -> [7, 23]
    torch.testing.assert_close(pooled, torch.tensor([[7.5, 7.5, 13.0, 17.0, 7.0, 23.0]]))
    # a 2-channel map: channels stay apart, channel-major within each sum
    x2 = torch.cat([x, 2 * x], dim=1)
    torch.testing.assert_close(pod_pool(x2, (2,)),
                               torch.tensor([[13.0, 17.0, 26.0, 34.0, 7.0, 23.0, 14.0, 46.0]]))


def test_pod_pool_non_square_reads_the_width_before_resizing():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 6, 4)  # H > W: resized to 6x6, kernels from W = 4
    square = F.interpolate(x, size=(6, 6), mode='bilinear', align_corners=False)
    parts = []
    for s in (1, 2, 4):
        t = F.avg_pool2d(square, 4 // s)
        parts += [t.sum(2).flatten(1), t.sum(3).flatten(1)]
    torch.testing.assert_close(pod_pool(x), torch.cat(parts, 1))
    assert pod_pool(x).shape == (1, 2 * (1 + 1 + 3 + 3 + 6 + 6))
    with pytest.raises(ValueError, match='cannot be pooled at scales'):
        pod_pool(torch.randn(1, 1, 3, 3))


def test_representation_compensation_by_hand():
    teacher = torch.arange(16.0).view(1, 1, 4, 4) - 8  # half negative: ReLU drops it
    assert representation_compensation_loss(teacher, teacher).item() == 0
    assert representation_compensation_loss(teacher - 100, teacher.clamp(max=0)).item() == 0
    student = teacher + 0.4  # the 8 cells >= 0 gain 0.4 after ReLU; -1 + 0.4 stays 0
    a, b = pod_pool(student.clamp(min=0)), pod_pool(teacher.clamp(min=0))
    expected = F.smooth_l1_loss(a, b)
    torch.testing.assert_close(representation_compensation_loss(student, teacher), expected)
    # scale 1: the mean moves by 8 * 0.4 / 16 = 0.2
    torch.testing.assert_close(a[0, 0] - b[0, 0], torch.tensor(0.2))
    with pytest.raises(ValueError, match='differ in shape'):
        representation_compensation_loss(student, teacher[..., :2])


def test_cdt_equals_an_einsum_computation():
    torch.manual_seed(0)
    E, heads, B, h, w, Q = 8, 2, 2, 3, 4, 5
    cdt = ContentDependentTransfer(E, heads).eval()
    with torch.no_grad():
        for p in cdt.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    pixels, text = torch.randn(B, E, h, w), torch.randn(Q, E)
    out = cdt(pixels, text)
    # independent: Mask2Former's sine encoding, per-head softmax attention by einsum
    pos = sine_pos(pixels, E // 2)
    P = pixels.flatten(2).transpose(1, 2)  # (B, N, E)
    K = (P + pos.flatten(2).transpose(1, 2))
    Wq, Wk, Wv = cdt.attn.in_proj_weight.chunk(3)
    bq, bk, bv = cdt.attn.in_proj_bias.chunk(3)
    q = (text @ Wq.T + bq).view(Q, heads, -1)
    k = (K @ Wk.T + bk).view(B, h * w, heads, -1)
    v = (P @ Wv.T + bv).view(B, h * w, heads, -1)
    attn = torch.einsum('qhd,bnhd->bhqn', q, k) / math.sqrt(E // heads)
    mha = torch.einsum('bhqn,bnhd->bqhd', attn.softmax(-1), v).reshape(B, Q, E)
    mha = mha @ cdt.attn.out_proj.weight.T + cdt.attn.out_proj.bias
    expected = F.layer_norm(text + mha @ cdt.proj.weight.T + cdt.proj.bias, (E,),
                            cdt.norm.weight, cdt.norm.bias)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_cdt_init_and_panoptic_variant():
    torch.manual_seed(0)
    cdt = ContentDependentTransfer(8, 2)
    # Xavier on the attention's projections (the release's _reset_parameters), W left alone
    bound = math.sqrt(6 / (8 + 24))
    assert cdt.attn.in_proj_weight.abs().max() <= bound
    pan = ContentDependentTransfer(8, 2, panoptic=True)
    text = torch.randn(3, 8)
    # W = 0 at init: T + LN(0) = T + LN's bias (0)
    torch.testing.assert_close(pan(torch.randn(2, 8, 2, 2), text), text.expand(2, 3, 8))
    with pytest.raises(ValueError, match='must both have width'):
        cdt(torch.randn(1, 6, 2, 2), torch.randn(3, 6))
    with pytest.raises(ValueError, match='divisible by num_heads'):
        ContentDependentTransfer(10, 4)


def test_classify_by_hand():
    emb = torch.tensor([[[3.0, 4.0]]])  # |x| = 5
    classifier = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 1.0], [-1.0, 0.0]])  # 3 names, void
    scale = torch.tensor(math.log(200.0))  # clamped to 100
    logits = classify(emb, classifier, scale)
    # the rows are not renormalised (CDT's T'): <(0.6, 0.8), row> * 100
    torch.testing.assert_close(logits, torch.tensor([[[60.0, 160.0, 80.0, -60.0]]]))
    grouped = classify(emb, classifier, scale, torch.tensor([0, 1, 0]))  # names 0, 2: class 0
    torch.testing.assert_close(grouped, torch.tensor([[[80.0, 160.0, -60.0]]]))
    per_image = classify(emb.expand(2, 1, 2), classifier.expand(2, 4, 2) * torch.tensor(
        [1.0, 2.0]).view(2, 1, 1), torch.tensor(0.0))
    torch.testing.assert_close(per_image[1], 2 * per_image[0])


def test_semantic_probabilities_are_the_released_arithmetic():
    in_vocab = torch.tensor([[[0.0, 0.0, math.log(2.0)]]])  # p_void = 2 / 4
    out_vocab = torch.tensor([[[math.log(3.0), 0.0, 9.0]]])  # classes 3/4, 1/4; void unused
    probs = semantic_probabilities(in_vocab, out_vocab)
    P = torch.tensor([0.75 * 0.5, 0.25 * 0.5, 0.5]) + 1e-8
    torch.testing.assert_close(probs, (P / P.sum())[:2].view(1, 1, 2))


def test_mask_pool_by_hand():
    feats = torch.arange(8.0).view(1, 2, 2, 2)
    masks = torch.tensor([[[[1.0, -1.0], [1.0, -1.0]], [[-1.0] * 2] * 2]])
    pooled = mask_pool(feats, masks)
    torch.testing.assert_close(pooled, torch.tensor([[[1.0, 5.0], [0.0, 0.0]]]))  # empty -> 0


def test_vit_stages_dense_head_is_clipvits_projection(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / 'tiny_vit.json'
    path.write_text(json.dumps(TINY_VIT))
    weights = tmp_path / 'w.safetensors'
    save_file(make_clip(TINY_VIT).state_dict(), str(weights))
    layers = TINY_VIT['vision_cfg']['layers']
    stages = CLIPViTStages(model=str(path), pretrained=str(weights),
                           out_indices=tuple(range(layers - 4, layers)) if layers >= 4 else
                           (0, 0, 0, layers - 1))
    vit = CLIPViT(model=str(path), pretrained=str(weights))
    x = torch.randn(1, 3, 64, 96)
    dense = stages.forward_dense(x)
    torch.testing.assert_close(dense.feats, vit.encode_dense(x), atol=1e-5, rtol=1e-5)
    grid = (64 // vit.patch_size, 96 // vit.patch_size)
    assert [tuple(level.shape[-2:]) for level in dense.levels] == [
        (grid[0] * 4, grid[1] * 4), (grid[0] * 2, grid[1] * 2), grid, grid]
    with pytest.raises(ValueError, match='four blocks'):
        CLIPViTStages(model=str(path), pretrained=str(weights), out_indices=(0, 1))


# ----------------------------------------------------------------------------- the head
def test_gradients_reach_the_trunk_through_l_ma_and_l_rc_only(convnext_clip):
    config, weights, _ = convnext_clip
    model = build(segmentor_cfg(config, weights)).train()
    torch.manual_seed(1)
    x = torch.randn(2, 3, 128, 128)  # a 4 x 4 trunk output: POD at scales 1, 2, 4
    data = samples(torch.randint(0, 3, (2, 128, 128)))
    losses = model.loss(x, data)
    assert {'loss_cls', 'loss_mask', 'loss_dice', 'loss_mask_aware', 'loss_rc',
            'd0.loss_cls', f'd{LAYERS - 1}.loss_dice'} <= set(losses)
    trunk = model.backbone.visual.trunk.stages[-1].blocks[-1].conv_dw.weight
    head = model.decode_head
    mask2former = sum(v for k, v in losses.items() if k not in ('loss_mask_aware', 'loss_rc'))
    grads = torch.autograd.grad(mask2former, [trunk], allow_unused=True)
    assert grads[0] is None  # the mask generator sees detached trunk maps
    model.zero_grad()
    (losses['loss_mask_aware'] + losses['loss_rc']).backward(retain_graph=True)
    assert trunk.grad is not None and trunk.grad.abs().sum() > 0
    assert head.cdt.proj.weight.grad.abs().sum() > 0  # CDT trains through L_MA
    # the student's CLIP head (frozen in the release) and the teacher get no gradient
    for p in [*model.backbone.visual.head.parameters(),
              *model.backbone.visual.trunk.head.parameters(), *head.backbone_t.parameters()]:
        assert p.grad is None
    assert not any(p.requires_grad for p in head.backbone_t.parameters())
    head.train()
    assert not head.backbone_t.training


@pytest.mark.parametrize('trained', [('loss_cls', 'loss_mask', 'loss_dice'),
                                     ('loss_mask_aware',), ('loss_rc',)])
def test_a_few_iterations_reduce_each_loss(convnext_clip, trained):
    """Each objective on its own (L_MA's targets follow the masks, which the Mask2Former terms
    move, so the terms are trained apart)."""
    config, weights, _ = convnext_clip
    model = build(segmentor_cfg(config, weights)).train()
    torch.manual_seed(2)
    x = torch.randn(2, 3, 128, 128)
    labels = torch.zeros(2, 128, 128, dtype=torch.long)
    labels[:, :, 64:] = 1
    labels[1, :64, :64] = 2
    data = samples(labels)
    with torch.no_grad():  # move the student away from the teacher, so that L_RC starts > 0
        for p in model.backbone.visual.trunk.stages.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    trunk = [p for p in model.backbone.parameters() if p.requires_grad]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and
            not n.startswith('backbone.')]
    # the released multipliers: the trunk at lr x 0.1
    opt = torch.optim.AdamW([dict(params=trunk, lr=1e-4), dict(params=rest)], lr=1e-3)
    history = []
    for _ in range(8):
        torch.manual_seed(3)  # the same sampled points each step
        losses = model.loss(x, data)
        history.append({k: losses[k].item() for k in trained})
        opt.zero_grad()
        sum(losses[k] for k in trained).backward()
        opt.step()
    for name in trained:
        assert history[-1][name] < history[0][name], (name, history[0][name], history[-1][name])


def test_converted_release_gives_the_released_outputs(convnext_clip, tmp_path):
    config, weights, clip = convnext_clip
    cfg = segmentor_cfg(config, weights)
    ours = build(cfg).eval()
    torch.manual_seed(5)
    released = ReleasedMAFTPlus(copy.deepcopy(clip), copy.deepcopy(clip), [24, 32, 48, 64],
                                FEAT, HEADS, 1, LAYERS, QUERIES, 32, 3)
    with torch.no_grad():
        for name, p in released.named_parameters():
            if 'clip_model' not in name:
                p.copy_(torch.randn_like(p) * 0.2 + (1.0 if name.endswith('norm.weight') else 0))
        # a fine-tuned student: its trunk differs from backbone_t's
        for p in released.backbone.clip_model.visual.trunk.stages.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    state = released.state_dict()
    assert any(k.startswith('sem_seg_head.pixel_decoder.adapter_1.norm') for k in state)
    src, dst = tmp_path / 'maftp_b.pth', tmp_path / 'converted.pth'
    torch.save({'model': state, 'iteration': 60000}, src)
    assert converter().main([str(src), str(dst)]) == 0
    load_checkpoint_strict(ours, dst)

    torch.manual_seed(6)
    x = torch.randn(1, 3, 64, 96)
    vocabulary, text = ours.text_for()
    with torch.no_grad():
        text_classifier = F.normalize(F.normalize(text, dim=-1).mean(1), dim=-1)
        expected = released.semantic(x, text_classifier, [1, 1, 1])
        got = ours.decode_head.predict(ours.backbone.forward_dense(x), text)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert expected.std() > 1e-3  # not a degenerate comparison


def test_synonyms_take_the_max_logit_per_class(convnext_clip):
    config, weights, _ = convnext_clip
    model = build(segmentor_cfg(config, weights)).eval()
    x = torch.randn(1, 3, 64, 64)
    dense = model.backbone.forward_dense(x)
    text3 = model.encode_text(model._as_vocabulary(NAMES)).detach()
    # a repeated name changes nothing once the class takes the max over its names (the
    # release's max ensemble happens before the softmax over classes)
    text4 = torch.cat([text3, text3[2:]])
    with torch.no_grad():
        plain = model.decode_head.predict(dense, text3)
        grouped = model.decode_head.predict(dense, text4, torch.tensor([0, 1, 2, 2]))
        flat = model.decode_head.predict(dense, text4)
    torch.testing.assert_close(grouped, plain)
    assert flat.shape[1] == 4 and not torch.allclose(flat[:, :2], plain[:, :2])


def test_converter_drops_what_the_release_never_reads_and_rejects_foreign_keys():
    conv = converter()
    state = {'criterion.empty_weight': torch.ones(4),
             'backbone_t.clip_model.logit_scale': torch.zeros(()),
             'backbone_t.clip_model.text_projection': torch.zeros(2, 2),
             'backbone.clip_model.logit_scale': torch.ones(()),
             'sem_seg_head.predictor.class_embed.layers.2.weight': torch.zeros(3, 3),
             'sem_seg_head.pixel_decoder.adapter_1.norm.bias': torch.zeros(3)}
    assert sorted(conv.convert(state)) == ['decode_head.clip_logit_scale',
                                           'decode_head.cls_embed.4.weight',
                                           'decode_head.pixel_decoder.lateral_convs.0.gn.bias']
    with pytest.raises(KeyError, match=r"keys of no released MAFT\+ module: \['head.w'\]"):
        conv.convert({**state, 'head.w': torch.zeros(1)})


def test_bad_input_is_named(convnext_clip):
    config, weights, _ = convnext_clip
    cfg = segmentor_cfg(config, weights)
    bad = copy.deepcopy(cfg)
    bad['decode_head']['embed_dim'] = 48
    with pytest.raises(ValueError, match='teacher CLIPConvNeXt embeds in 32'):
        build(bad)
    bad = copy.deepcopy(cfg)
    bad['decode_head']['teacher'] = dict(type='SinePositionalEncoding', num_feats=4,
                                         _scope_='mmdet')
    with pytest.raises(TypeError, match='has no dense_head'):
        build(bad)
    model = build(cfg)
    head = model.decode_head
    dense = model.backbone.forward_dense(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match='names x templates x embed_dim'):
        head.predict(dense, torch.randn(3, 16))
    with pytest.raises(ValueError, match='num_classes=3'):
        head.loss(dense, torch.randn(4, 2, 32), samples(torch.zeros(1, 64, 64).long()))
    dense.levels = dense.levels[1:]
    with pytest.raises(ValueError, match='gave 3 levels'):
        head.predict(dense, torch.randn(3, 2, 32))
    assert isinstance(head.cdt, nn.Module)


def test_the_segmentor_passes_query_to_class_only_to_heads_that_merge_synonyms():
    from types import SimpleNamespace

    from denseclip.models.heads import MAFTPlusHead
    from denseclip.models.heads.base import OpenVocabHead
    from denseclip.models.segmentors import OpenVocabEncoderDecoder
    from denseclip.models.text import Vocabulary

    vocab = Vocabulary.from_list([['cat', 'kitty'], 'dog', ['sky', 'heaven', 'air']])
    merging = SimpleNamespace(synonyms=True, extra_names=(), decode_head=MAFTPlusHead)
    kwargs = OpenVocabEncoderDecoder.head_kwargs(merging, vocab)
    assert kwargs['query_to_class'].tolist() == [0, 0, 1, 2, 2, 2]
    plain = SimpleNamespace(synonyms=True, extra_names=(), decode_head=OpenVocabHead)
    assert OpenVocabEncoderDecoder.head_kwargs(plain, vocab) == {}
    first_names = SimpleNamespace(synonyms=False, extra_names=(), decode_head=MAFTPlusHead)
    assert OpenVocabEncoderDecoder.head_kwargs(first_names, vocab) == {}
    extra = SimpleNamespace(synonyms=True, extra_names=('none',), decode_head=MAFTPlusHead)
    with pytest.raises(ValueError, match='extra_names=.*merges synonyms itself'):
        OpenVocabEncoderDecoder.head_kwargs(extra, vocab)
