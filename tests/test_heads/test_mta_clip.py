"""MTA-CLIP: the mask-to-text loss, text refinement and mask embedding by hand, the Mask2Former
terms against mmdet's own head, and released checkpoints through the converter against a
transcription of the released head (mta_clip_reference.py)."""
from __future__ import annotations

import copy
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmdet.models.dense_heads import Mask2FormerHead as MMDetMask2FormerHead
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample

from denseclip.engine import load_checkpoint_strict
from denseclip.models.heads import MTACLIPHead, mask_text_contrastive_loss
from denseclip.registry import MODELS
from mta_clip_reference import SIZES, decoder_cfgs, released_forward, released_state_dict

ROOT = Path(__file__).resolve().parents[2]
NAMES = ['wall', 'car', 'traffic light']
# open_clip config of denseclip_reference's tiny ResNet CLIP
CLIP = dict(embed_dim=32, quick_gelu=True,
            text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2),
            vision_cfg=dict(image_size=64, layers=(1, 1, 1, 1), width=8, head_width=8))


def converter():
    spec = importlib.util.spec_from_file_location(
        'mta_clip_converter', ROOT / 'tools/model_converters/mta_clip.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def head_cfg(num_classes: int, text_dim: int, in_channels: list[int], **kwargs) -> dict:
    """Our MTACLIPHead at the reference's sizes, the released losses and matching."""
    feat, cfgs = SIZES['feat'], decoder_cfgs(SIZES['feat'], SIZES['heads'], SIZES['layers'])
    return dict(
        type='MTACLIPHead', num_classes=num_classes, text_dim=text_dim,
        num_prompts=SIZES['n_contexts'], in_channels=in_channels, strides=[4, 8, 16, 32],
        feat_channels=feat, out_channels=feat, num_queries=SIZES['num_queries'],
        num_transformer_feat_level=3, **cfgs,
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                      reduction='mean', class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                       loss_weight=5.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True,
                       reduction='mean', naive_dice=True, eps=1.0, loss_weight=5.0),
        train_cfg=dict(
            num_points=64, oversample_ratio=3.0, importance_sample_ratio=0.75,
            assigner=dict(type='mmdet.HungarianAssigner', match_costs=[
                dict(type='mmdet.ClassificationCost', weight=2.0),
                dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0)]),
            sampler=dict(type='mmdet.MaskPseudoSampler')),
        **kwargs)


def model_cfg(clip_json: Path, names=NAMES, **head_kwargs) -> dict:
    return dict(
        type='OpenVocabEncoderDecoder',
        backbone=dict(type='CLIPResNetWithAttention', model=str(clip_json),
                      input_resolution=64),
        vocabulary=names, extra_names=['none'],
        text_encoder=dict(context_length=13),
        prompt=dict(type='ContextPrompt', num_sets=SIZES['n_contexts']),
        decode_head=head_cfg(len(names), 32, [32, 64, 128, 256], **head_kwargs),
        slide_crop=64, slide_stride=43)


@pytest.fixture
def clip_json(tmp_path):
    path = tmp_path / 'rn.json'
    path.write_text(json.dumps(CLIP))
    return path


def build(cfg: dict):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    return MODELS.build(cfg)


def samples_of(labels: torch.Tensor) -> list[SegDataSample]:
    h, w = labels.shape[-2:]
    return [SegDataSample(gt_sem_seg=PixelData(data=lab[None]),
                          metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
            for lab in labels]


# ---------------------------------------------------------------- the mask-to-text loss
def _hand_loss(scores, labels, class_weight, loss_type):
    """_loss_by_feat_single's three branches, one query at a time with math.exp / math.log."""
    total, weights = 0.0, 0.0
    for s, c in zip(scores.tolist(), labels.tolist()):  # s[k][z]
        every = [math.exp(v) for row in s for v in row]
        target = s[c]
        z_star = max(range(len(target)), key=lambda z: target[z])
        if loss_type == 2:
            loss = -math.log(math.exp(target[z_star]) / sum(every))
        elif loss_type == 1:
            others = sum(math.exp(v) for z, v in enumerate(target) if z != z_star)
            loss = -math.log(math.exp(target[z_star]) / (sum(every) - others))
        else:
            loss = sum(-math.log(math.exp(v) / sum(every)) for v in target) / len(target)
        total += class_weight[c] * loss
        weights += class_weight[c]
    return total / weights


@pytest.mark.parametrize('loss_type', [0, 1, 2])
def test_contrastive_loss_by_hand(loss_type):
    """4 queries, 2 classes + 'none', 3 prompts: two matched queries, two 'none' ones."""
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(4, 3, 3, generator=g, dtype=torch.float64) * 2 - 1  # (N, K+1, Z)
    labels = torch.tensor([0, 2, 1, 2])
    class_weight = torch.tensor([1.0, 1.0, 0.1], dtype=torch.float64)
    got = mask_text_contrastive_loss(scores, labels, class_weight, loss_type)
    want = _hand_loss(scores, labels, class_weight.tolist(), loss_type)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_contrastive_loss_types_differ_as_the_paper_says():
    """1 drops the target's non-max prompts from the denominator: never above 2; 0 averages
    the target's prompts, so it is above 2 when they disagree. One prompt: all three agree."""
    g = torch.Generator().manual_seed(1)
    scores = torch.rand(6, 4, 3, generator=g) * 2 - 1
    labels = torch.tensor([0, 1, 2, 3, 3, 0])
    w = torch.tensor([1.0, 1.0, 1.0, 0.1])
    l0, l1, l2 = (mask_text_contrastive_loss(scores, labels, w, t) for t in (0, 1, 2))
    assert l1 < l2 < l0
    one = scores[:, :, :1]
    assert torch.allclose(mask_text_contrastive_loss(one, labels, w, 0),
                          mask_text_contrastive_loss(one, labels, w, 1))
    # a 'none' query counts a tenth of a matched one: no-'none' weights change the value
    assert not torch.isclose(l2, mask_text_contrastive_loss(scores, labels, torch.ones(4), 2))
    with pytest.raises(ValueError, match='query_loss_type values are 0, 1 and 2'):
        mask_text_contrastive_loss(scores, labels, w, 3)


# ---------------------------------------------------------------- refinement and masks
def test_text_refinement_scores_and_mask_embedding_by_hand():
    """One image, per query and class: t' = T + γ ⊙ LN(W q + b), S = cos(W_m q + b_m, t'),
    mask = MLP(q) · F, written element by element from the post-norm queries."""
    init_default_scope('mmseg')
    torch.manual_seed(0)
    K, D = 2, 6
    head = MODELS.build(head_cfg(K, D, [8, 8, 8, 8]))
    with torch.no_grad():
        head.gamma.uniform_(0.5, 1.0)  # so that the refinement shows
    N, Z = SIZES['num_queries'], SIZES['n_contexts']
    queries = torch.randn(1, N + Z * (K + 1), SIZES['feat'])
    text = torch.randn(1, Z, K + 1, D)
    feature = torch.randn(1, SIZES['feat'], 4, 5)
    with torch.no_grad():
        cls, scores, masks, attn = head._forward_head(queries, feature, text, (2, 3), True)
        q = head.transformer_decoder.post_norm(queries)[0]
        for n in range(N):
            m = head.mask_reproject(q[n])
            for z in range(Z):
                for k in range(K + 1):
                    r = head.query_reproject(q[N + z * (K + 1) + k])  # prompt-major order
                    r = (r - r.mean()) / torch.sqrt(r.var(unbiased=False) + 1e-5)
                    r = r * head.norm_reproject.weight + head.norm_reproject.bias
                    t = text[0, z, k] + head.gamma * r
                    cos = (m @ t) / (m.norm() * t.norm())
                    assert scores[0, n, k, z].item() == pytest.approx(cos.item(), abs=1e-5)
            embed = head.mask_embed(q[n])
            for y, x in ((0, 0), (3, 4), (2, 1)):
                want = sum(embed[c] * feature[0, c, y, x] for c in range(SIZES['feat']))
                assert masks[0, n, y, x].item() == pytest.approx(want.item(), abs=1e-5)
            assert torch.allclose(cls[0, n], head.cls_embed(q[n]), atol=1e-6)
    # every query (text ones too) gets a cross-attention mask per head: σ(mask) < 0.5
    assert attn.shape == (SIZES['heads'], N + Z * (K + 1), 6)
    full = torch.einsum('qc,chw->qhw', head.mask_embed(q), feature[0])
    small = F.interpolate(full[None], (2, 3), mode='bilinear', align_corners=False)[0]
    assert torch.equal(attn[0], (small.flatten(1).sigmoid() < 0.5))


# ---------------------------------------------------------------- Mask2Former terms
@pytest.mark.parametrize('avg', ['class_weight', 'matched'])
def test_mask2former_terms_are_mmdets(avg):
    """CE, BCE and Dice of one layer against mmdet's Mask2FormerHead on the same predictions
    and random points; the released mask normaliser Σ class weights (matched + 0.1 x
    unmatched) instead of mmdet's matched count scales BCE and Dice by their ratio."""
    init_default_scope('mmseg')
    torch.manual_seed(0)
    K = 3
    ours = MODELS.build(head_cfg(K, 8, [8, 8, 8, 8], mask_avg_factor=avg))
    cfg = ConfigDict(copy.deepcopy(head_cfg(K, 8, [8, 8, 8, 8])))
    for key in ('type', 'num_classes', 'text_dim', 'num_prompts'):
        cfg.pop(key)
    mmdet = MMDetMask2FormerHead(num_things_classes=K, num_stuff_classes=0, **cfg)
    B, N = 2, SIZES['num_queries']
    g = torch.Generator().manual_seed(3)
    cls = torch.randn(B, N, K + 1, generator=g)
    masks = torch.randn(B, N, 16, 16, generator=g)
    text_scores = torch.rand(B, N, K + 1, 3, generator=g)
    gts = []
    for labels in ([0, 2], [1]):
        m = torch.zeros(len(labels), 16, 16, dtype=torch.long)
        for i in range(len(labels)):
            m[i, :, i * 5:(i + 1) * 5 + 3] = 1
        gts.append(InstanceData(labels=torch.tensor(labels), masks=m))
    metas = [dict(img_shape=(16, 16))] * B
    torch.manual_seed(7)
    got = ours._loss_by_feat_single(cls, text_scores, masks, gts, metas)
    torch.manual_seed(7)
    want_cls, want_mask, want_dice = mmdet._loss_by_feat_single(cls, masks, gts, metas)
    matched = 3
    weight_sum = matched + 0.1 * (B * N - matched)
    scale = matched / weight_sum if avg == 'class_weight' else 1.0
    torch.testing.assert_close(got['loss_cls'], want_cls)
    torch.testing.assert_close(got['loss_mask'], want_mask * scale)
    torch.testing.assert_close(got['loss_dice'], want_dice * scale)
    assert got['loss_queries'] > 0


def test_no_ground_truth_gives_zero_mask_losses(clip_json):
    model = build(model_cfg(clip_json))
    model.train()
    losses = model.loss(torch.randn(1, 3, 64, 64), samples_of(torch.full((1, 64, 64), 255)))
    assert losses['loss_mask'] == 0 and losses['loss_dice'] == 0
    assert losses['loss_cls'] > 0 and losses['loss_queries'] > 0  # every query is 'none'
    sum(losses.values()).backward()


# ---------------------------------------------------------------- released checkpoints
def test_converted_release_gives_the_released_outputs(clip_json, tmp_path):
    state = released_state_dict(num_classes=len(NAMES), seed=1)
    released = tmp_path / 'released.pth'
    torch.save({'state_dict': state, 'meta': {'iter': 160000}}, released)
    ours = tmp_path / 'ours.pth'
    assert converter().main([str(released), str(ours)]) == 0
    model = build(model_cfg(clip_json))
    load_checkpoint_strict(model, ours)  # every key and shape
    model.eval()
    images = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    ref = released_forward(state, images, NAMES + ['none'])
    close = dict(atol=2e-5, rtol=1e-4)
    with torch.no_grad():
        dense = model.backbone.forward_dense(images)
        text = model.encode_text(model.vocabulary)  # (K+1, Z, D)
        cls, scores, masks = model.decode_head(dense.levels, text, with_scores=True)
        probs = model.decode_head.predict(dense, text)
    for got, want in zip(dense.levels, ref['levels']):
        torch.testing.assert_close(got, want, **close)
    torch.testing.assert_close(text.transpose(0, 1), ref['text'], **close)
    assert len(cls) == SIZES['layers']
    for i in range(SIZES['layers']):
        torch.testing.assert_close(cls[i], ref['cls'][i], **close)
        torch.testing.assert_close(masks[i], ref['masks'][i], **close)
        # released (Z, B, N, K+1); ours (B, N, K+1, Z)
        torch.testing.assert_close(scores[i], ref['scores'][i].permute(1, 2, 3, 0), **close)
    torch.testing.assert_close(probs, ref['probs'], **close)
    # the segmentor's merge of one window is the head's map (probabilities, no softmax)
    with torch.no_grad():
        out = model.predict(images[:1, :, :, :64], samples_of(torch.zeros(1, 64, 64).long()))
    window = model.decode_head.predict(model.backbone.forward_dense(images[:1, :, :, :64]), text)
    torch.testing.assert_close(out[0].seg_logits.data, window[0], **close)


def test_converter_drops_the_unused_keys_and_rejects_foreign_ones(clip_json, tmp_path):
    conv = converter()
    state = released_state_dict(num_classes=len(NAMES))
    converted = conv.convert(state)
    assert not any('lang_embed' in k or 'visual_emb_proj' in k for k in converted)
    assert 'gamma' not in converted and 'decode_head.gamma' in converted
    with pytest.raises(KeyError, match=r"keys of no released MTA-CLIP module: \['head.w'\]"):
        conv.convert({**state, 'head.w': torch.zeros(1)})
    state.pop('decode_head.query_embed_decoder.weight')
    torch.save({'state_dict': state}, tmp_path / 'released.pth')
    conv.main([str(tmp_path / 'released.pth'), str(tmp_path / 'ours.pth')])
    model = build(model_cfg(clip_json))
    with pytest.raises(ValueError, match=r"missing \(1\): \['decode_head.query_embed.weight'\]"):
        load_checkpoint_strict(model, tmp_path / 'ours.pth')


# ---------------------------------------------------------------- training and errors
def test_a_few_iterations_reduce_the_loss(clip_json):
    model = build(model_cfg(clip_json))
    model.train()
    g = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 64, 64, generator=g)
    labels = torch.zeros(2, 64, 64, dtype=torch.long)
    labels[:, :, 32:] = 1
    labels[1, :20] = 2
    samples = samples_of(labels)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-3)
    totals = []
    for _ in range(8):
        torch.manual_seed(0)  # the same points every step
        losses = model.loss(images, samples)
        total = sum(losses.values())
        totals.append(total.item())
        opt.zero_grad()
        total.backward()
        opt.step()
    assert totals[-1] < 0.85 * totals[0]
    assert model.prompt.contexts.grad.abs().sum() > 0  # through the frozen text tower
    assert model.decode_head.gamma.grad.abs().sum() > 0  # the text refinement trains
    assert all(not p.requires_grad for p in model.text_encoder.parameters())


def test_text_of_another_vocabulary_is_refused(clip_json):
    model = build(model_cfg(clip_json))
    model.test_vocabulary = model._as_vocabulary(NAMES + ['tree'])
    model.eval()
    with pytest.raises(ValueError, match=r"expected \(4, 3, 32\): the 3 classes the head was "
                                         r"built for plus 'none'"):
        model.predict(torch.randn(1, 3, 64, 64))


def test_extra_names_must_be_a_list(clip_json):
    cfg = model_cfg(clip_json)
    cfg['extra_names'] = 'none'
    with pytest.raises(ValueError, match=r"extra_names='none' is a string"):
        build(cfg)


def test_head_settings_are_checked():
    with pytest.raises(ValueError, match='mask_avg_factor'):
        MTACLIPHead(**{k: v for k, v in head_cfg(2, 8, [8] * 4, mask_avg_factor='x').items()
                       if k != 'type'})
