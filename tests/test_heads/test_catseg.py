"""CAT-Seg: each part against an independent computation from its equations (window partition
and shift mask, linear attention, class equivariance, top-k pruning, window + global fusion,
the released loss, the q/v-only trainable set)."""
from __future__ import annotations

import copy
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import open_clip

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from catseg_reference import ReleasedCATSeg
from denseclip.engine import load_checkpoint_strict
from denseclip.models.backbones import DenseOutput
from denseclip.models.heads import CATSegHead, CostVolume, linear_attention
from denseclip.models.heads.catseg import shifted_window_mask
from denseclip.models.segmentors.base import SlideSegmentor
from denseclip.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
NAMES = ['wall', 'car', 'traffic light', 'sky', 'tree']
# A tiny open_clip ViT: 64-pixel images, 16-pixel patches (4x4 grid), 4 blocks of width 32.
TINY = dict(embed_dim=32, quick_gelu=True,
            vision_cfg=dict(image_size=64, patch_size=16, width=32, layers=4, head_width=16),
            text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2))
HEAD = dict(type='CATSegHead', embed_dim=32, guidance_channels=32, hidden_dim=32, num_heads=4,
            window_size=2, pad_len=8, appearance_guidance_dim=16, text_guidance_dim=16,
            decoder_dims=(32, 16), decoder_guidance_dims=(32, 16),
            decoder_guidance_proj_dims=(16, 8))


def tiny_head(**kwargs) -> CATSegHead:
    torch.manual_seed(0)
    head = MODELS.build({**HEAD, **kwargs})
    with torch.no_grad():  # the padding token and guidance start at zero: make them matter
        for layer in head.layers:
            layer.classwise.padding_tokens.normal_()
            layer.classwise.padding_guidance.normal_()
    return head


def dense_output(B=2, D=32, W=32, grid=(4, 4), size=64, seed=0) -> DenseOutput:
    g = torch.Generator().manual_seed(seed)
    return DenseOutput(feats=torch.randn(B, D, *grid, generator=g), grid=grid, tokens=[],
                       images=torch.zeros(B, 3, size, size),
                       levels=tuple(torch.randn(B, W, *grid, generator=g) for _ in range(2)))


def model_cfg(clip_json, names=NAMES, **kwargs) -> dict:
    return dict(
        type='OpenVocabEncoderDecoder',
        backbone=dict(type='CLIPViT', model=str(clip_json), dense=dict(type='CATSegAttention'),
                      out_indices=(1, 2), input_size=64),
        text_encoder=dict(frozen=True), clip_finetune='attention_qv', synonyms=False,
        prompt=dict(type='TemplatePrompt', templates=['A photo of a {} in the scene']),
        vocabulary=names, decode_head=HEAD, resize_to=(96, 96), slide_crop=64,
        slide_stride=32, global_view=True, **kwargs)


@pytest.fixture
def clip_json(tmp_path):
    path = tmp_path / 'tiny.json'
    path.write_text(json.dumps(TINY))
    return path


def samples(labels: torch.Tensor) -> list[SegDataSample]:
    shape = tuple(labels.shape[-2:])
    return [SegDataSample(gt_sem_seg=PixelData(data=lab[None]),
                          metainfo=dict(img_shape=shape, ori_shape=shape)) for lab in labels]


# ----------------------------------------------------------------- spatial aggregation
def test_shift_mask_separates_the_regions_of_the_rolled_map():
    H, W, w, s = 8, 8, 4, 2
    mask = shifted_window_mask(H, W, w, s)

    def region(y, size):  # Swin's three slices of the cyclically shifted map
        return 0 if y < size - w else (1 if y < size - s else 2)

    expected = torch.zeros(H // w * (W // w), w * w, w * w)
    for wy in range(H // w):
        for wx in range(W // w):
            labels = [3 * region(wy * w + a, H) + region(wx * w + b, W)
                      for a in range(w) for b in range(w)]
            for i, li in enumerate(labels):
                for j, lj in enumerate(labels):
                    expected[wy * (W // w) + wx, i, j] = 0.0 if li == lj else -100.0
    assert torch.equal(mask, expected)
    # By hand: the first window lies in one region; the last mixes four of 2 x 2 tokens.
    assert not mask[0].any()
    assert (mask[-1] == 0).sum() == 4 * 4 ** 2


def test_spatial_aggregation_attends_within_windows_only():
    """A change at one position moves, after the unshifted block alone, only its window."""
    head = tiny_head(window_size=2)
    block = head.layers[0].spatial.block_1
    x = torch.randn(1, 4, 4, 32)
    g = torch.randn(1, 4, 4, 16)
    y = x.clone()
    y[0, 0, 0] += torch.randn(32)  # not a constant: LayerNorm would remove it
    moved = (block(y, g) - block(x, g)).abs().sum(-1)[0] > 1e-6
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[:2, :2] = True
    assert torch.equal(moved, expected)


# ----------------------------------------------------------------- class aggregation
def test_linear_attention_is_the_normalised_kernel_product():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 5, 3, 4), torch.randn(2, 7, 3, 4), torch.randn(2, 7, 3, 4)
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    out = torch.empty_like(q)
    for n in range(2):
        for h in range(3):
            A = phi_q[n, :, h] @ phi_k[n, :, h].T  # (L, S) = φ(q) φ(k)ᵀ
            out[n, :, h] = (A @ v[n, :, h]) / A.sum(-1, keepdim=True)
    torch.testing.assert_close(linear_attention(q, k, v, eps=0.0), out)


@pytest.mark.parametrize('training', [True, False])
def test_head_is_equivariant_to_the_class_order(training):
    head = tiny_head().train(training)
    dense = dense_output()
    text = torch.randn(6, 1, 32)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        out, out_perm = head(dense, text), head(dense, text[perm])
    torch.testing.assert_close(out_perm, out[:, perm], rtol=1e-4, atol=1e-5)
    # ...while the class count matters: the learnable padding fills the other 2 of 8 slots.
    with torch.no_grad():
        fewer = head(dense, text[:5])
    assert not torch.allclose(fewer, out[:, :5], atol=1e-4)


# ----------------------------------------------------------------- cost volume and pruning
def test_cost_volume_keeps_each_images_top_classes():
    torch.manual_seed(0)
    feats, text = torch.randn(2, 8, 3, 3), torch.randn(10, 2, 8)
    cost, kept_text, kept = CostVolume(max_classes=4)(feats, text)
    for b in range(2):
        cos = torch.stack([torch.stack([F.cosine_similarity(feats[b], text[t, p][:, None, None],
                                                            dim=0) for p in range(2)])
                           for t in range(10)])  # (T, P, h, w)
        best = sorted(cos.flatten(1).amax(1).topk(4).indices.tolist())
        assert kept[b].tolist() == best
        torch.testing.assert_close(cost[b], cos[best].transpose(0, 1))
        torch.testing.assert_close(kept_text[b], F.normalize(text[best], dim=-1))
    scores = torch.randn(2, 4, 5, 5)
    full = CostVolume(max_classes=4).restore(scores, kept, 10)
    for b in range(2):
        assert torch.equal(full[b, kept[b]], scores[b])
        pruned = [t for t in range(10) if t not in kept[b].tolist()]
        assert (full[b, pruned] == -100).all()


def test_head_with_more_classes_than_pad_len_scores_only_the_kept_ones():
    """A-847 / PC-459: each image's top pad_len classes are scored as if they were the whole
    vocabulary; the other classes get logit -100."""
    head = tiny_head().eval()
    dense = dense_output(B=2)
    text = torch.randn(12, 1, 32)
    with torch.no_grad():
        out = head(dense, text)
        _, _, kept = head.cost_volume(dense.feats, text)
        for b in range(2):
            alone = head(DenseOutput(feats=dense.feats[b:b + 1], grid=dense.grid, tokens=[],
                                     images=dense.images[b:b + 1],
                                     levels=tuple(lv[b:b + 1] for lv in dense.levels)),
                         text[kept[b]])
            torch.testing.assert_close(out[b, kept[b]], alone[0], rtol=1e-4, atol=1e-5)
            assert (out[b].flatten(1).amax(1) == -100).sum() == 12 - 8


# ----------------------------------------------------------------- loss
@pytest.mark.parametrize('ignore_as_negative', [True, False])
def test_bce_loss_by_hand(ignore_as_negative):
    head = tiny_head(ignore_as_negative=ignore_as_negative)
    logits = torch.tensor([[[[2.0, 2.0]], [[-1.0, -1.0]]]])  # (1, T=2, 1, 2): constant per class
    head.forward = lambda dense, text: logits
    labels = torch.tensor([[[0, 255]]])  # pixel 0: class 0, pixel 1: ignored
    loss = head.loss(dense_output(B=1), torch.randn(2, 1, 32), samples(labels))['loss_bce']

    def bce(x, t):
        return -(t * math.log(1 / (1 + math.exp(-x))) + (1 - t) * math.log(1 / (1 + math.exp(x))))

    pixel0 = bce(2.0, 1) + bce(-1.0, 0)
    pixel1 = bce(2.0, 0) + bce(-1.0, 0)  # all-zero target: pushes every class down
    expected = (pixel0 + pixel1) / 4 if ignore_as_negative else pixel0 / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


# ----------------------------------------------------------------- inference
class WindowStats(SlideSegmentor):
    """A segmentor whose 'probabilities' for a window are its first channel minus the window
    mean, and one minus that: each window's scores depend on the whole window."""

    class Backbone(torch.nn.Module):
        output_stride = 1

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.backbone = self.Backbone()

    def text_for(self, data_samples=None):
        return None, None

    def loss(self, inputs, data_samples):
        raise NotImplementedError

    def score_windows(self, crops, text):
        x = crops[:, :1] - crops[:, :1].mean((2, 3), keepdim=True)
        return torch.cat([x, 1 - x], 1)


def test_windows_and_global_view_are_averaged_as_released():
    torch.manual_seed(0)
    image = torch.randn(1, 3, 7, 9)
    model = WindowStats(resize_to=(10, 10), slide_crop=6, slide_stride=4, global_view=True)
    out = model.inference(image, (7, 9))

    # The released inference_sliding_window, with nn.Unfold / nn.Fold (kernel 6, stride 4).
    unfold, fold = torch.nn.Unfold(6, stride=4), torch.nn.Fold((10, 10), 6, stride=4)
    big = F.interpolate(image, size=(10, 10), mode='bilinear', align_corners=False)
    crops = unfold(big)[0].T.reshape(-1, 3, 6, 6)  # 4 windows (2 x 2), row-major
    glob = F.interpolate(image, size=(6, 6), mode='bilinear', align_corners=False)
    probs = model.score_windows(torch.cat([crops, glob]), None)
    windows = fold(probs[:-1].flatten(1).T[None]) / fold(unfold(torch.ones(1, 1, 10, 10)))
    glob = F.interpolate(probs[-1:], size=(10, 10), mode='bilinear', align_corners=False)
    expected = F.interpolate((windows + glob) / 2, size=(7, 9), mode='bilinear',
                             align_corners=False)
    torch.testing.assert_close(out, expected)


def test_global_view_needs_windows():
    with pytest.raises(ValueError, match='global_view=True needs slide windows'):
        WindowStats(slide_crop=0, global_view=True)


def test_predict_returns_sigmoid_probabilities_at_the_window_size():
    head = tiny_head().eval()
    dense = dense_output(size=64)
    text = torch.randn(3, 1, 32)
    with torch.no_grad():
        probs, logits = head.predict(dense, text), head(dense, text)
    assert probs.shape == (2, 3, 64, 64) and head.scores == 'probs'
    up = F.interpolate(logits, size=(64, 64), mode='bilinear', align_corners=False)
    torch.testing.assert_close(probs, up.sigmoid())  # upsampled first, then the sigmoid


# ----------------------------------------------------------------- training
def test_only_the_q_and_v_projections_of_both_towers_train(clip_json):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(clip_json))
    optim = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
        clip_grad=dict(max_norm=0.01, norm_type=2),
        paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.01),
                                        'text_encoder': dict(lr_mult=0.01)},
                           norm_decay_mult=0.0),
        constructor='TrainableOptimWrapperConstructor'))
    before = copy.deepcopy(model.state_dict())
    model.train()
    losses = model.loss(torch.randn(2, 3, 64, 64), samples(torch.randint(0, 5, (2, 64, 64))))
    optim.update_params(losses['loss_bce'])
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    clip = {k for k in changed if k.startswith(('backbone.', 'text_encoder.'))}
    last = len(model.backbone.blocks) - 1
    expected = {f'{tower}transformer.resblocks.{i}.attn.{p}_proj_weight'
                for tower, blocks in (('backbone.visual.', 4), ('text_encoder.', 2))
                for i in range(blocks) for p in 'qv'}
    # The dense last block reads only v: its q gets no gradient and stays.
    expected.discard(f'backbone.visual.transformer.resblocks.{last}.attn.q_proj_weight')
    assert clip == expected
    assert all(k.startswith('decode_head.') for k in changed - clip)
    assert any(k.startswith('decode_head.layers.') for k in changed)
    assert not any(k.endswith('in_proj_weight') for k in before)  # split as released
    groups = {id(p): g for g in optim.optimizer.param_groups for p in g['params']}
    q = model.text_encoder.transformer.resblocks[0].attn.q_proj_weight
    assert groups[id(q)]['lr'] == pytest.approx(1e-5)  # CLIP_MULTIPLIER 0.01
    norm = model.decode_head.layers[0].spatial.block_1.norm1.weight
    assert groups[id(norm)]['weight_decay'] == 0.0  # WEIGHT_DECAY_NORM 0


def test_first_names_only_and_text_gradients_in_training(clip_json):
    init_default_scope('mmseg')
    model = MODELS.build(model_cfg(clip_json, names=[('wall', 'brick wall'), 'car']))
    assert model.query_names(model.vocabulary) == ['wall', 'car']
    model.train()
    _, text = model.text_for()
    text.sum().backward()  # recomputed with gradients each step (released get_text_embeds)
    assert model.text_encoder.transformer.resblocks[0].attn.q_proj_weight.grad is not None


def test_a_few_iterations_reduce_the_loss(clip_json):
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg(clip_json))
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    torch.manual_seed(1)
    images = torch.randn(2, 3, 64, 64)
    labels = torch.randint(0, 5, (2, 1, 1)).expand(2, 64, 64)  # one class per image
    model.train()
    losses = []
    for _ in range(12):
        loss = model.loss(images, samples(labels))['loss_bce']
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert losses[-1] < min(losses[:3])


def test_segments_an_image_with_any_vocabulary(clip_json):
    init_default_scope('mmseg')
    model = MODELS.build(model_cfg(clip_json, test_vocabulary=['dog', 'cat', 'grass']))
    model.eval()
    out = model.predict(torch.randn(1, 3, 50, 70), [SegDataSample(
        metainfo=dict(img_shape=(50, 70), ori_shape=(50, 70)))])[0]
    probs = out.seg_logits.data
    assert probs.shape == (3, 50, 70)
    assert (probs >= 0).all() and (probs <= 1).all()  # sigmoid, not a softmax over classes
    assert not torch.allclose(probs.sum(0), torch.ones(50, 70))
    assert torch.equal(out.pred_sem_seg.data[0], probs.argmax(0))


# ----------------------------------------------------------------- released checkpoints
def released_model(seed=1) -> ReleasedCATSeg:
    torch.manual_seed(seed)
    model = ReleasedCATSeg(
        clip=dict(embed_dim=32, resolution=64, patch=16, vision_width=32, vision_layers=4,
                  vision_heads=2, context=77, vocab=49408, width=32, heads=2, layers=2),
        agg=dict(embed_dim=32, hidden=32, layers=2, heads=4, res=(4, 4), pool=(1, 1),
                 window=2, pad_len=8, tg=16, ag=16, decoder_dims=(32, 16), dec_g=(32, 16),
                 dec_gp=(16, 8)),
        layer_indexes=(1, 2), clip_resolution=(64, 64), up_dims=(32, 16))
    with torch.no_grad():  # every term visible: no zero biases, padding or LN identities
        for name, param in model.named_parameters():
            if param.dim() == 1 or 'padding' in name or 'class_embedding' in name:
                param.add_(torch.randn_like(param) * 0.1)
    return model.eval()


def converter():
    spec = importlib.util.spec_from_file_location(
        'catseg_converter', ROOT / 'tools/model_converters/catseg.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_converted_release_gives_the_released_outputs(clip_json, tmp_path):
    released = released_model()
    path, ours_path = tmp_path / 'model_final.pth', tmp_path / 'ours.pth'
    torch.save({'model': released.state_dict(), 'iteration': 79999}, path)
    assert any(k.endswith('attn.q_proj_weight') for k in released.state_dict())
    assert converter().main([str(path), str(ours_path)]) == 0
    init_default_scope('mmseg')
    model = MODELS.build(model_cfg(clip_json))  # windows of 64 at stride 32 on 96 x 96
    load_checkpoint_strict(model, ours_path)  # every key and shape, both ways
    model.eval()

    with torch.no_grad():
        tokens = open_clip.tokenize([f'A photo of a {n} in the scene' for n in NAMES])
        text_ref = released.text_embeds(tokens)  # (T, 1, D), unit norm
        text = model.text_for()[1]
        torch.testing.assert_close(F.normalize(text, dim=-1), text_ref, atol=2e-5, rtol=1e-4)

        torch.manual_seed(2)
        images = torch.randn(2, 3, 64, 64)
        ref = released.logits(images, text_ref)
        ours = model.decode_head(model.backbone.forward_dense(images), text)
        torch.testing.assert_close(ours, ref, atol=5e-5, rtol=1e-4)

        many = F.normalize(torch.randn(11, 1, 32), dim=-1)  # > pad_len 8: top-8 per image
        ref = released.logits(images, many)
        ours = model.decode_head(model.backbone.forward_dense(images), many)
        assert (ours == -100).any()
        torch.testing.assert_close(ours, ref, atol=5e-5, rtol=1e-4)

        image = torch.randn(1, 3, 50, 70)  # sliding window: 96x96, 2x2 windows of 64 + global
        ref = released.sliding_window(image, text_ref, 64, 0.5, (96, 96), 50, 70)
        ours = model.inference(image, (50, 70))[0]
        torch.testing.assert_close(ours, ref, atol=5e-5, rtol=1e-4)

    # Training: the released loss (2x2 class pooling, ignored pixels as all-zero targets).
    for layer in released.sem_seg_head.predictor.transformer.layers:
        layer.attention.pool = torch.nn.AvgPool2d((2, 2))
    labels = torch.randint(0, len(NAMES), (2, 64, 64))
    labels[:, :8] = 255
    model.train()
    for m in model.modules():  # no dropout anywhere; BN-free; train mode only pools
        assert not isinstance(m, torch.nn.Dropout) or m.p == 0
    loss = model.loss(images, samples(labels))['loss_bce']
    ref = released.loss(images, labels, released.text_embeds(tokens))
    torch.testing.assert_close(loss, ref, atol=2e-6, rtol=1e-5)


def test_converter_names_foreign_keys(tmp_path, capsys):
    path = tmp_path / 'other.pth'
    torch.save({'model': {'backbone.layer1.conv.weight': torch.zeros(1)}}, path)
    assert converter().main([str(path), str(tmp_path / 'out.pth')]) == 1
    assert 'keys of no released CAT-Seg module' in capsys.readouterr().err
    assert not (tmp_path / 'out.pth').exists()


@pytest.mark.parametrize('name', ['catseg', 'denseclip'])
def test_converters_run_as_scripts(name, tmp_path):
    """``python tools/model_converters/<method>.py``: the script's folder, first on sys.path,
    holds a denseclip.py that must not shadow the package."""
    missing = tmp_path / 'missing.pth'
    run = subprocess.run([sys.executable, str(ROOT / 'tools/model_converters' / f'{name}.py'),
                          str(missing), str(tmp_path / 'out.pth')], capture_output=True,
                         text=True, cwd=tmp_path)
    assert run.returncode == 1
    assert f"checkpoint '{missing}' does not exist" in run.stderr
