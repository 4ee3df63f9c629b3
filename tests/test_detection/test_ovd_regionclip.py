"""RegionCLIPDetector: the RoI head reuses CLIP's res5 + attention pool, the rescoring, the
text classifier with a zero background, proposal sources and their errors, transfer loss."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import OPENAI_RN, TINY_VIT, make_clip
from mmdet.structures import DetDataSample
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from safetensors.torch import save_file

import denseclip  # noqa: F401
from denseclip.models.detectors.regionclip import (DetVocabularyCheckHook, RegionCLIPDetector,
                                                   class_logits, rescore)
from denseclip.registry import MMDET_MODELS

PRE = dict(type='DetDataPreprocessor', mean=None, std=None, bgr_to_rgb=False,
           pad_size_divisor=32)


@pytest.fixture
def tiny_rn(tmp_path):
    cfg = tmp_path / 'rn.json'
    cfg.write_text(json.dumps(OPENAI_RN))
    model = make_clip(OPENAI_RN)
    weights = tmp_path / 'rn.safetensors'
    save_file(model.state_dict(), str(weights))
    return str(cfg), str(weights), model


@pytest.fixture
def tiny_vit_files(tmp_path):
    cfg = tmp_path / 'vit.json'
    cfg.write_text(json.dumps(TINY_VIT))
    model = make_clip(TINY_VIT)
    weights = tmp_path / 'vit.safetensors'
    save_file(model.state_dict(), str(weights))
    return str(cfg), str(weights), model


def _build(backbone, **kw):
    cfg = dict(type='RegionCLIPDetector', backbone=backbone, data_preprocessor=PRE,
               vocabulary=['cat', 'dog', 'bird'], templates=['a photo of a {}.'],
               proposal_source='gt')
    cfg.update(kw)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMDET_MODELS.build(cfg).eval()


def _sample(boxes, labels, shape=(64, 64)):
    s = DetDataSample()
    s.set_metainfo(dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                        scale_factor=(1.0, 1.0), batch_input_shape=shape, img_path='x.png'))
    s.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                  labels=torch.tensor(labels))
    return s


def test_roi_head_on_the_whole_image_is_clips_image_embedding(tiny_rn):
    """RoIAlign (aligned, 2x the attention grid) of the whole res4 map, then res5 and the
    attention pool, is CLIP's own image embedding of that image (encode_image)."""
    cfg, weights, clip = tiny_rn
    det = _build(dict(type='CLIPResNet', model=cfg, pretrained=weights))
    assert det.roi_size == 4  # tiny RN: 64 px input, 2x2 attention grid
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 64)
    boxes = [torch.tensor([[0., 0., 64., 64.]]), torch.tensor([[0., 0., 64., 64.]])]
    with torch.no_grad():
        ours = det.region_embeddings(images, boxes)
        ref = clip.encode_image(images)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)
    # a crop: the box's region equals CLIP's embedding of the crop resized to 64x64 only
    # approximately, but the box of the top-left quarter of a 128x128 image whose quarter is
    # the 64x64 image, is the same res4 cells exactly
    big = torch.randn(1, 3, 128, 128)
    big[..., :64, :64] = images[:1]
    with torch.no_grad():
        quarter = det.region_embeddings(big, [torch.tensor([[0., 0., 64., 64.]])])
        res4_big = _res4(clip.visual, big)[..., :4, :4]
        res4_img = _res4(clip.visual, images[:1])
    # the receptive field crosses the quarter's border, so compare to the pooled res4 cells
    expected = clip.visual.attnpool(clip.visual.layer4(res4_big))
    torch.testing.assert_close(quarter, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(res4_big, res4_img)  # context matters: a real crop of features


def _res4(visual, x):
    x = visual.stem(x)
    return visual.layer3(visual.layer2(visual.layer1(x)))


def test_class_logits_zero_background_temperature_and_synonyms():
    regions = torch.tensor([[3.0, 4.0], [0.0, -2.0]])
    text = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), dim=-1)
    q2c = torch.tensor([0, 1, 1])  # class 1 has two names
    logits = class_logits(regions, text, q2c, 2, 0.01)
    # region 0 = (0.6, 0.8): class 0 = 0.6; class 1 = max(0.8, 1.4 / sqrt 2 = 0.98995)
    # region 1 = (0, -1): class 0 = 0; class 1 = max(-1, -1 / sqrt 2); background always 0
    expected = torch.tensor([[0.6, 1.4 / 2 ** 0.5, 0.0], [0.0, -1 / 2 ** 0.5, 0.0]]) / 0.01
    torch.testing.assert_close(logits, expected)


def test_rescoring_by_hand():
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    o = torch.tensor([0.8, 0.25])  # logits log(4) = 1.386, log(1/3) = -1.0986
    torch.testing.assert_close(rescore(probs, o, 'sigmoid'),
                               torch.tensor([[0.4 ** .5, 0.24 ** .5, 0.16 ** .5],
                                             [0.025 ** .5, 0.025 ** .5, 0.2 ** .5]]))
    lg = rescore(probs, o, 'logit')
    l0 = torch.log(torch.tensor(4.0))
    torch.testing.assert_close(lg[0], (probs[0] * l0).sqrt())
    assert torch.isnan(lg[1]).all()  # negative logit: NaN, dropped by the finite filter
    assert rescore(probs, o, None) is probs
    with pytest.raises(ValueError, match='objectness'):
        rescore(probs, o, 'softplus')


def test_predict_with_gt_boxes_scores_through_the_text_classifier(tiny_vit_files):
    cfg, weights, clip = tiny_vit_files
    det = _build(dict(type='CLIPViT', model=cfg, pretrained=weights), objectness=None,
                 test_cfg=dict(score_thr=0.0))
    images = torch.rand(1, 3, 64, 64) * 255
    sample = _sample([[0., 0., 32., 32.], [16., 16., 64., 64.]], [0, 1])
    with torch.no_grad():
        out = det.predict(images, [sample])[0].pred_instances
        # independent: pool the dense map by hand over the 2x2 / 3x3 patch cells
        dense = det.backbone.encode_dense(det._clip_inputs(images))  # (1, 32, 4, 4)
        text = det.classifier.embeddings
    assert det.roi_size == 7
    # box 0 covers cells [0:2, 0:2] exactly; RoIAlign 7x7 of a piecewise-bilinear map is not a
    # cell mean, so compare the classification, computed from region_embeddings, with softmax
    reg = det.region_embeddings(det._clip_inputs(images), [sample.gt_instances.bboxes])
    probs = torch.softmax(torch.cat([F.normalize(reg, dim=-1) @ text.t(),
                                     torch.zeros(2, 1)], 1) / 0.01, -1)
    for box, score, label in zip(out.bboxes, out.scores, out.labels):
        i = 0 if box[2] <= 32.5 else 1
        torch.testing.assert_close(score, probs[i, label])
    assert len(out.bboxes) >= 2 and dense.shape[-1] == 4
    # the top label of each box survives per-class NMS
    for i in range(2):
        top = int(probs[i, :3].argmax())
        assert any((lab == top) and torch.allclose(s, probs[i, top])
                   for s, lab in zip(out.scores, out.labels))


def test_bad_inputs(tiny_vit_files, tmp_path):
    cfg, weights, _ = tiny_vit_files
    bb = dict(type='CLIPViT', model=cfg, pretrained=weights)
    with pytest.raises(ValueError, match='vocabulary'):
        _build(bb, vocabulary=[])
    det = _build(bb, proposal_source='file')
    with pytest.raises(KeyError, match='proposal_file'):
        det.predict(torch.zeros(1, 3, 64, 64), [_sample([[0., 0., 8., 8.]], [0])])
    s = _sample([[0., 0., 8., 8.]], [0])
    s.set_metainfo(dict(scale_factor=(2.0, 0.5)))  # file boxes are in original pixels
    s.proposals = InstanceData(bboxes=torch.tensor([[4., 8., 10., 40.]]),
                               scores=torch.tensor([0.7]))
    p = det.proposals(torch.zeros(1, 3, 64, 64), [s])[0]
    torch.testing.assert_close(p.bboxes, torch.tensor([[8., 4., 20., 20.]]))
    torch.testing.assert_close(p.scores, torch.tensor([0.7]))
    s.proposals = InstanceData(bboxes=torch.zeros(1, 5), scores=torch.ones(1))
    with pytest.raises(ValueError, match=r'shape \(1, 5\)'):
        det.proposals(torch.zeros(1, 3, 64, 64), [s])
    with pytest.raises(ValueError, match="rpn=dict"):
        _build(bb, proposal_source='rpn')
    rpn = dict(type='RPN', backbone=dict(type='CLIPViT', model=cfg, pretrained=None,
                                         out_indices=(0,),
                                         dense=dict(type='VanillaAttention', _scope_='mmseg')),
               neck=None,
               rpn_head=dict(type='RPNHead', in_channels=64, feat_channels=32,
                             anchor_generator=dict(type='AnchorGenerator', scales=[2, 4],
                                                   ratios=[1.0], strides=[16]),
                             bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                             target_means=[.0, .0, .0, .0],
                                             target_stds=[1.0, 1.0, 1.0, 1.0])),
               train_cfg=None,
               test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=50,
                                      nms=dict(type='nms', iou_threshold=0.9),
                                      min_bbox_size=0)))
    det = _build(bb, proposal_source='rpn', rpn=rpn)
    with pytest.raises(RuntimeError, match='rpn_checkpoint'):
        det.predict(torch.zeros(1, 3, 64, 64), [_sample([[0., 0., 8., 8.]], [0])])
    with pytest.raises(FileNotFoundError, match='not found'):
        det.load_rpn(str(tmp_path / 'missing.pth'))
    bad = tmp_path / 'bad.pth'
    torch.save(dict(state_dict={'rpn_head.rpn_cls.weight': torch.zeros(1)}), bad)
    with pytest.raises(ValueError, match='does not match the RPN config'):
        det.load_rpn(str(bad))  # wrong shape
    partial = {k: v for k, v in det.rpn.state_dict().items() if 'rpn_cls' not in k}
    torch.save(dict(state_dict=partial), bad)
    with pytest.raises(KeyError, match='missing.*rpn_cls'):
        det.load_rpn(str(bad))
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=det.rpn.state_dict()), good)
    det.load_rpn(str(good))
    with torch.no_grad():
        out = det.predict(torch.rand(1, 3, 64, 64) * 255, [_sample([[0., 0., 8., 8.]], [0])])
    assert out[0].pred_instances.bboxes.shape[1] == 4


def test_vocabulary_check_hook_names_both_lists(tiny_vit_files):
    cfg, weights, _ = tiny_vit_files
    det = _build(dict(type='CLIPViT', model=cfg, pretrained=weights))

    class Loader:
        class dataset:
            metainfo = dict(classes=('cat', 'bird', 'dog'))

    class Runner:
        model = det
        test_dataloader = Loader

    with pytest.raises(ValueError, match=r"\['cat', 'dog', 'bird'\].*\('cat', 'bird', 'dog'\)|"
                                         r"\['cat', 'dog', 'bird'\].*\['cat', 'bird', 'dog'\]"):
        DetVocabularyCheckHook().before_test(Runner)
    Loader.dataset.metainfo = dict(classes=('cat', 'dog', 'bird'))
    DetVocabularyCheckHook().before_test(Runner)


def test_transfer_loss_decreases_and_trains_the_roi_head(tiny_rn):
    cfg, weights, _ = tiny_rn
    det = _build(dict(type='CLIPResNet', model=cfg, pretrained=weights),
                 train_vocabulary=['cat', 'dog'], train_cfg=dict(num_rois=16))
    det.train()
    assert isinstance(det, RegionCLIPDetector)
    assert not det.backbone.visual.conv1.weight.requires_grad  # FREEZE_AT 2
    assert not det.backbone.visual.layer1[0].conv1.weight.requires_grad
    torch.manual_seed(0)
    images = torch.rand(2, 3, 64, 64) * 255
    samples = [_sample([[4., 4., 40., 40.]], [0]), _sample([[20., 10., 60., 50.]], [1])]
    params = [p for p in det.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01)
    losses = []
    for _ in range(6):
        loss = det.loss(images, samples)
        total = loss['loss_cls'] + loss['loss_bbox']
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(total.item())
    assert losses[-1] < losses[0]
    assert det.backbone.visual.layer4[0].conv1.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='vocabulary has 2 classes'):
        det.loss(images, [_sample([[4., 4., 40., 40.]], [2])] * 2)


def test_loaded_text_weights_rebuild_the_classifier(tiny_rn):
    """tools/test.py --checkpoint builds the model with random CLIP weights and loads the
    checkpoint afterwards: the classifier must then be the loaded text tower's."""
    from mmengine.runner.checkpoint import load_state_dict

    from denseclip.models.text import build_text_classifier

    config, weights, clip = tiny_rn
    trained = _build(dict(type='CLIPResNet', model=config, pretrained=weights))
    fresh = _build(dict(type='CLIPResNet', model=config, pretrained=None))
    assert not torch.allclose(fresh.classifier.embeddings, trained.classifier.embeddings)
    load_state_dict(fresh, trained.state_dict(), strict=True)  # mmengine's loader, as the runner
    want = build_text_classifier(trained.text_encoder, None, trained.classifier.vocabulary,
                                 ['a photo of a {}.'])
    torch.testing.assert_close(fresh.classifier.embeddings, want.embeddings)
    torch.testing.assert_close(fresh.classifier.embeddings, trained.classifier.embeddings)
