"""tools/model_converters/regionclip.py: RegionCLIP's released detectron2 checkpoints ->
RegionCLIPDetector / mmdet RPN.

The released key layouts are transcribed here from microsoft/RegionCLIP@4b8513b's modules
(``clip_backbone.py`` ModifiedResNet + FrozenBatchNorm2d, CLIPLangEncoder, ``fast_rcnn.py``
FastRCNNOutputLayers; detectron2's ResNet / FPN / StandardRPNHead / DefaultAnchorGenerator),
not from the converter; the converted weights must load strictly and compute what the released
modules compute (the RPN by an independent detectron2-style forward written below).
"""
from __future__ import annotations

import importlib.util
import json
import math
import os

import pytest
import torch
import torch.nn.functional as F
from conftest import OPENAI_RN, make_clip
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from safetensors.torch import save_file

import denseclip  # noqa: F401
from denseclip.engine.checkpoint import load_checkpoint_strict, read_checkpoint
from denseclip.registry import MMDET_MODELS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    'regionclip_converter', os.path.join(ROOT, 'tools', 'model_converters', 'regionclip.py'))
conv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conv)

PRE = dict(type='DetDataPreprocessor', mean=None, std=None, bgr_to_rgb=False,
           pad_size_divisor=32)
FROZEN_BN = ('weight', 'bias', 'running_mean', 'running_var')  # detectron2 FrozenBatchNorm2d


# ---------------------------------------------------------------- released layouts
def released_clip_resnet_names(layers, width):
    """named_parameters + buffers of clip_backbone.py ``ModifiedResNet`` (C4 with attnpool)."""
    names = []
    for i in (1, 2, 3):  # stem: 3 convs, FrozenBN
        names += [f'conv{i}.weight'] + [f'bn{i}.{b}' for b in FROZEN_BN]
    inplanes = width
    for stage, blocks in enumerate(layers):
        planes = width * 2 ** stage
        for b in range(blocks):
            p = f'layer{stage + 1}.{b}.'
            for i in (1, 2, 3):
                names += [p + f'conv{i}.weight'] + [p + f'bn{i}.{x}' for x in FROZEN_BN]
            stride = 2 if stage > 0 and b == 0 else 1
            if stride > 1 or inplanes != planes * 4:  # Bottleneck.downsample: -1 avgpool, 0, 1
                names += [p + 'downsample.0.weight'] + [p + f'downsample.1.{x}' for x in FROZEN_BN]
            inplanes = planes * 4
    names += ['attnpool.positional_embedding'] + [f'attnpool.{n}_proj.{x}' for n in 'kqvc'
                                                  for x in ('weight', 'bias')]
    return names


def released_lang_encoder_names(layers):
    """named_parameters of clip_backbone.py ``CLIPLangEncoder`` (no logit_scale)."""
    names = ['token_embedding.weight', 'positional_embedding', 'ln_final.weight',
             'ln_final.bias', 'text_projection']
    for i in range(layers):
        p = f'transformer.resblocks.{i}.'
        names += [p + n for n in ('attn.in_proj_weight', 'attn.in_proj_bias',
                                  'attn.out_proj.weight', 'attn.out_proj.bias', 'ln_1.weight',
                                  'ln_1.bias', 'mlp.c_fc.weight', 'mlp.c_fc.bias',
                                  'mlp.c_proj.weight', 'mlp.c_proj.bias', 'ln_2.weight',
                                  'ln_2.bias')]
    return names


def _get(module, dotted):
    for part in dotted.split('.'):
        module = getattr(module, part)
    return module.detach().clone()


def _randomise_bn(clip, seed=1):
    g = torch.Generator().manual_seed(seed)
    for m in clip.visual.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def released_detector_state(clip, num_classes=3, pretrained=False):
    """A CLIPFastRCNN (transfer) / PretrainFastRCNN (pretrained) state dict whose image and
    text towers are ``clip``'s, in the released names."""
    v = OPENAI_RN['vision_cfg']
    state = {'backbone.' + n: _get(clip.visual, n)
             for n in released_clip_resnet_names(v['layers'], v['width'])}
    e = OPENAI_RN['embed_dim']
    g = torch.Generator().manual_seed(3)
    if pretrained:  # PretrainFastRCNN: student, teacher, frozen language encoder, offline RPN
        state.update({'teacher_backbone.' + k[len('backbone.'):]: torch.randn(t.shape, generator=g)
                      for k, t in state.items()})
        state.update({'lang_encoder.' + n: _get(clip, n) for n in
                      released_lang_encoder_names(OPENAI_RN['text_cfg']['layers'])})
        state['offline_backbone.bottom_up.stem.conv1.weight'] = torch.randn(8, 3, 7, 7)
        state['offline_proposal_generator.rpn_head.conv.weight'] = torch.randn(8, 8, 3, 3)
    else:  # CLIPFastRCNN after transfer: text embeddings as frozen linear weights, deltas
        box = 'roi_heads.box_predictor.'
        state[box + 'cls_score.weight'] = torch.randn(num_classes, e, generator=g)
        state[box + 'cls_bg_score.weight'] = torch.zeros(1, e)
        state[box + 'test_cls_score.weight'] = torch.randn(num_classes + 2, e, generator=g)
        state[box + 'bbox_pred.weight'] = torch.randn(4, e, generator=g)
        state[box + 'bbox_pred.bias'] = torch.randn(4, generator=g)
        state['roi_heads.mask_head.predictor.weight'] = torch.randn(1, 8, 1, 1)
    return state


def _detector(tmp_path, init_seed=5):
    """A tiny RegionCLIPDetector initialised from another random CLIP than the released one."""
    cfg = tmp_path / 'rn.json'
    cfg.write_text(json.dumps(OPENAI_RN))
    init = tmp_path / 'init.safetensors'
    save_file(make_clip(OPENAI_RN, seed=init_seed).state_dict(), str(init))
    det_cfg = dict(type='RegionCLIPDetector',
                   backbone=dict(type='CLIPResNet', model=str(cfg), pretrained=str(init)),
                   data_preprocessor=PRE, vocabulary=['cat', 'dog', 'bird'],
                   templates=['a photo of a {}.'], proposal_source='gt', use_box_deltas=True)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMDET_MODELS.build(det_cfg).eval()


def _region_check(det, clip):
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 64)
    whole = [torch.tensor([[0., 0., 64., 64.]])] * 2
    with torch.no_grad():
        ours = det.region_embeddings(images, whole)
        ref = clip.encode_image(images)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


def _text_check(det, clip):
    ours = det.text_encoder.state_dict()
    for name in released_lang_encoder_names(OPENAI_RN['text_cfg']['layers']):
        torch.testing.assert_close(ours[name], _get(clip, name), msg=name)


# ---------------------------------------------------------------- detector
def test_transfer_checkpoint_converts_loads_strictly_and_embeds_like_the_released_clip(
        tmp_path):
    clip = make_clip(OPENAI_RN, seed=11)
    _randomise_bn(clip)  # FrozenBN statistics must land in the BN buffers
    released = released_detector_state(clip)
    src, dst = tmp_path / 'regionclip_finetuned-coco_rn50.pth', tmp_path / 'ours.pth'
    torch.save({'model': released, '__author__': 'RegionCLIP'}, src)  # detectron2 checkpointer
    clip_file = tmp_path / 'RN50-openai.safetensors'  # the text tower (lang_encoder absent)
    save_file(clip.state_dict(), str(clip_file))
    assert conv.main([str(src), str(dst), '--clip', str(clip_file)]) == 0
    det = _detector(tmp_path)
    with pytest.raises(AssertionError):
        _region_check(det, clip)  # before loading: another CLIP
    load_checkpoint_strict(det, dst)  # every key of ours filled, every shape equal
    _region_check(det, clip)
    _text_check(det, clip)
    box = 'roi_heads.box_predictor.bbox_pred.'
    torch.testing.assert_close(det.bbox_pred.weight, released[box + 'weight'])
    torch.testing.assert_close(det.bbox_pred.bias, released[box + 'bias'])
    # the deltas the released head predicts are the ones ours applies
    regions = torch.randn(5, OPENAI_RN['embed_dim'])
    torch.testing.assert_close(det.bbox_pred(regions),
                               regions @ released[box + 'weight'].t() + released[box + 'bias'])


def test_pretrained_checkpoint_keeps_the_student_and_its_language_encoder(tmp_path):
    clip = make_clip(OPENAI_RN, seed=12)
    _randomise_bn(clip, seed=2)
    src, dst = tmp_path / 'regionclip_pretrained-cc_rn50.pth', tmp_path / 'ours.pth'
    torch.save({'model': released_detector_state(clip, pretrained=True)}, src)
    assert conv.main([str(src), str(dst)]) == 0
    det = _detector(tmp_path)
    load_checkpoint_strict(det, dst)
    _region_check(det, clip)  # the student, not the teacher
    _text_check(det, clip)
    assert not det.bbox_pred.weight.any() and not det.bbox_pred.bias.any()  # no deltas


def test_detector_bad_inputs(tmp_path, capsys):
    clip = make_clip(OPENAI_RN, seed=13)
    released = released_detector_state(clip)
    # a key of no released module: named in the error, nothing written
    src, dst = tmp_path / 'bad.pth', tmp_path / 'out.pth'
    torch.save({'model': {**released, 'roi_heads.res5.0.conv9.weight': torch.zeros(1)}}, src)
    assert conv.main([str(src), str(dst), '--clip', str(src)]) == 1
    assert 'roi_heads.res5.0.conv9.weight' in capsys.readouterr().err
    assert not dst.exists() and not (tmp_path / 'out.pth.tmp').exists()
    # no text tower and no --clip
    with pytest.raises(KeyError, match='--clip'):
        conv.convert_detector(released)
    # a text tower of another CLIP size (RN50x4 vs RN50): shapes checked
    other = make_clip({**OPENAI_RN, 'embed_dim': 16}, seed=1).state_dict()
    with pytest.raises(ValueError, match='projects to 16 but the image tower to 32'):
        conv.convert_detector(released, clip=other)
    # class-specific deltas: our detector has the class-agnostic ones only
    bad = {**released, 'roi_heads.box_predictor.bbox_pred.weight': torch.zeros(12, 32)}
    with pytest.raises(ValueError, match=r'bbox_pred.weight has shape \(12, 32\)'):
        conv.convert_detector(bad, clip=clip.state_dict())
    # a FrozenBN with a lost buffer
    broken = {k: v for k, v in released.items() if k != 'backbone.bn1.running_mean'}
    with pytest.raises(KeyError, match=r'backbone.visual.bn1 lacks'):
        conv.convert_detector(broken, clip=clip.state_dict())
    # a converted file that does not fit the model: strict load names the key and shapes
    out = conv.convert_detector(released, clip=clip.state_dict())
    out['backbone.visual.attnpool.positional_embedding'] = torch.zeros(5, 7)
    torch.save({'state_dict': out}, dst)
    with pytest.raises(ValueError, match='attnpool.positional_embedding'):
        load_checkpoint_strict(_detector(tmp_path), dst)
    # missing files
    assert conv.main([str(tmp_path / 'nope.pth'), str(dst)]) == 1
    assert 'nope.pth' in capsys.readouterr().err
    torch.save({'model': released}, src)
    assert conv.main([str(src), str(dst), '--clip', str(tmp_path / 'no_clip.pt')]) == 1
    assert 'no_clip.pt' in capsys.readouterr().err


# ---------------------------------------------------------------- offline RPN
STEM, BOTTLE, FPN_CH = 8, 8, 16  # tiny R50: stem 8, res2 bottleneck 8 (out 32), x2 per stage
BLOCKS = (3, 4, 6, 3)


def released_rpn_state(fpn: bool, num_anchors: int, seed: int = 0, lsj: bool = False) -> dict:
    """A detectron2 GeneralizedRCNN (R50-FPN / R50-C4 Mask R-CNN) state dict, its shapes from
    detectron2's ResNet (``STRIDE_IN_1X1``, FrozenBN), FPN and StandardRPNHead. ``lsj``: the
    LSJ RPN as RegionCLIP builds it (``OFFLINE_RPN_LSJ_PRETRAINED``: SyncBN in the ResNet and
    the FPN, whose convs then have no bias, and ``RPN.CONV_DIMS [-1, -1]``: conv.conv0/1)."""
    g = torch.Generator().manual_seed(seed)
    state = {}

    def conv(name, out, inp, k, bias=False, norm=True):
        state[name + '.weight'] = torch.randn(out, inp, k, k, generator=g) / math.sqrt(inp * k * k)
        if bias:
            state[name + '.bias'] = torch.randn(out, generator=g) * 0.1
        if norm:
            state[name + '.norm.weight'] = 1 + 0.1 * torch.randn(out, generator=g)
            state[name + '.norm.bias'] = 0.1 * torch.randn(out, generator=g)
            state[name + '.norm.running_mean'] = 0.1 * torch.randn(out, generator=g)
            state[name + '.norm.running_var'] = 0.5 + torch.rand(out, generator=g)
            if lsj:  # SyncBatchNorm saves its counter, FrozenBatchNorm2d does not
                state[name + '.norm.num_batches_tracked'] = torch.tensor(7)

    pre = 'backbone.bottom_up.' if fpn else 'backbone.'
    conv(pre + 'stem.conv1', STEM, 3, 7)
    inp, stages = STEM, (2, 3, 4, 5) if fpn else (2, 3, 4)
    outs = {}
    for s in stages:
        bott, out = BOTTLE * 2 ** (s - 2), BOTTLE * 4 * 2 ** (s - 2)
        for b in range(BLOCKS[s - 2]):
            p = f'{pre}res{s}.{b}.'
            if b == 0:
                conv(p + 'shortcut', out, inp, 1)
            conv(p + 'conv1', bott, inp if b == 0 else out, 1)
            conv(p + 'conv2', bott, bott, 3)
            conv(p + 'conv3', out, bott, 1)
        inp = outs[s] = out
    if fpn:
        for s in (2, 3, 4, 5):
            conv(f'backbone.fpn_lateral{s}', FPN_CH, outs[s], 1, bias=not lsj, norm=lsj)
            conv(f'backbone.fpn_output{s}', FPN_CH, FPN_CH, 3, bias=not lsj, norm=lsj)
    head_in = FPN_CH if fpn else outs[4]
    h = 'proposal_generator.rpn_head.'
    for name in ((h + 'conv.conv0', h + 'conv.conv1') if lsj else (h + 'conv',)):
        conv(name, head_in, head_in, 3, bias=True, norm=False)
    conv(h + 'objectness_logits', num_anchors, head_in, 1, bias=True, norm=False)
    conv(h + 'anchor_deltas', 4 * num_anchors, head_in, 1, bias=True, norm=False)
    for i in range(5 if fpn else 1):
        state[f'proposal_generator.anchor_generator.cell_anchors.{i}'] = torch.zeros(3, 4)
    state['roi_heads.box_predictor.cls_score.weight'] = torch.zeros(49, 8)  # Mask R-CNN heads
    state['roi_heads.mask_head.mask_fcn1.weight'] = torch.zeros(8, 8, 3, 3)
    return state


def _frozen_bn(x, state, name):
    scale = state[name + '.weight'] / torch.sqrt(state[name + '.running_var'] + 1e-5)
    shift = state[name + '.bias'] - state[name + '.running_mean'] * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def detectron2_rpn_forward(state, x, fpn, lsj=False):
    """detectron2's R50 (BasicStem, BottleneckBlock with the stride in the 1x1), FPN with
    LastLevelMaxPool and StandardRPNHead, from the released tensors alone."""
    pre = 'backbone.bottom_up.' if fpn else 'backbone.'

    def cnn(x, name, stride=1, pad=0):
        return _frozen_bn(F.conv2d(x, state[name + '.weight'], stride=stride, padding=pad),
                          state, name + '.norm')

    x = F.max_pool2d(F.relu(cnn(x, pre + 'stem.conv1', 2, 3)), 3, 2, 1)
    feats = {}
    for s in ((2, 3, 4, 5) if fpn else (2, 3, 4)):
        for b in range(BLOCKS[s - 2]):
            p = f'{pre}res{s}.{b}.'
            stride = 2 if s > 2 and b == 0 else 1
            out = F.relu(cnn(x, p + 'conv1', stride))
            out = F.relu(cnn(out, p + 'conv2', 1, 1))
            out = cnn(out, p + 'conv3')
            short = cnn(x, p + 'shortcut', stride) if b == 0 else x
            x = F.relu(out + short)
        feats[s] = x
    if fpn:
        def c(x, name, pad=0):
            y = F.conv2d(x, state[name + '.weight'], state.get(name + '.bias'), padding=pad)
            return _frozen_bn(y, state, name + '.norm') if lsj else y
        prev = c(feats[5], 'backbone.fpn_lateral5')
        levels = {5: c(prev, 'backbone.fpn_output5', 1)}
        for s in (4, 3, 2):
            prev = c(feats[s], f'backbone.fpn_lateral{s}') + F.interpolate(
                prev, scale_factor=2.0, mode='nearest')
            levels[s] = c(prev, f'backbone.fpn_output{s}', 1)
        maps = [levels[s] for s in (2, 3, 4, 5)] + [F.max_pool2d(levels[5], 1, 2, 0)]
    else:
        maps = [feats[4]]
    h = 'proposal_generator.rpn_head.'
    objectness, deltas = [], []
    for m in maps:
        t = m
        for name in (('conv.conv0', 'conv.conv1') if lsj else ('conv',)):
            t = F.relu(F.conv2d(t, state[h + name + '.weight'], state[h + name + '.bias'],
                                padding=1))
        objectness.append(F.conv2d(t, state[h + 'objectness_logits.weight'],
                                   state[h + 'objectness_logits.bias']))
        deltas.append(F.conv2d(t, state[h + 'anchor_deltas.weight'],
                               state[h + 'anchor_deltas.bias']))
    return objectness, deltas


def mmdet_rpn(fpn: bool, lsj: bool = False) -> dict:
    """The mmdet RPN config a converted RegionCLIP RPN needs (tiny widths)."""
    anchors = (dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                    strides=[4, 8, 16, 32, 64]) if fpn else
               dict(type='AnchorGenerator', scales=[2, 4, 8, 16, 32], ratios=[0.5, 1.0, 2.0],
                    strides=[16], scale_major=False))
    head_in = FPN_CH if fpn else BOTTLE * 4 * 4
    return dict(
        type='RPN',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[103.53, 116.28, 123.675],
                               std=[1.0, 1.0, 1.0], bgr_to_rgb=False, pad_size_divisor=32),
        backbone=dict(type='ResNet', depth=50, stem_channels=STEM, base_channels=BOTTLE,
                      num_stages=4 if fpn else 3, strides=(1, 2, 2, 2)[:4 if fpn else 3],
                      dilations=(1, 1, 1, 1)[:4 if fpn else 3],
                      out_indices=(0, 1, 2, 3) if fpn else (2,), frozen_stages=-1,
                      norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True,
                      style='caffe'),
        neck=dict(type='FPN', in_channels=[32, 64, 128, 256], out_channels=FPN_CH, num_outs=5,
                  norm_cfg=dict(type='BN', requires_grad=False) if lsj else None)
        if fpn else None,
        rpn_head=dict(type='RPNHead', in_channels=head_in, feat_channels=head_in,
                      num_convs=2 if lsj else 1,
                      anchor_generator=anchors,
                      bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                                      target_stds=[1.0] * 4)),
        train_cfg=None,
        test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=100,
                               nms=dict(type='nms', iou_threshold=0.9), min_bbox_size=0)))


@pytest.mark.parametrize('fpn,lsj', [(True, False), (True, True), (False, False)],
                         ids=['r50-fpn_lvis', 'r50-fpn-lsj_lvis', 'r50-c4_coco'])
def test_rpn_converts_and_computes_what_detectron2_computes(tmp_path, fpn, lsj):
    anchors = 3 if fpn else 15
    released = released_rpn_state(fpn, anchors, lsj=lsj)
    src, dst = tmp_path / 'rpn_released.pth', tmp_path / 'rpn_ours.pth'
    torch.save({'model': released}, src)
    assert conv.main([str(src), str(dst)]) == 0
    with DefaultScope.overwrite_default_scope('mmdet'):
        rpn = MMDET_MODELS.build(ConfigDict(mmdet_rpn(fpn, lsj))).eval()
    load_checkpoint_strict(rpn, dst)  # every mmdet key filled, shapes equal
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        cls, reg = rpn.bbox_head(rpn.extract_feat(x))
        ref_cls, ref_reg = detectron2_rpn_forward(released, x, fpn, lsj)
    assert len(cls) == len(ref_cls) == (5 if fpn else 1)
    for ours, ref in zip(cls + reg, ref_cls + ref_reg):
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_c4_anchor_order_needs_scale_major_false():
    """detectron2's DefaultAnchorGenerator orders a level's anchors size-major (for size: for
    ratio: w = sqrt(size^2 / r), h = r w, centred on 0): objectness channel a of the released
    head scores that anchor. mmdet's AnchorGenerator matches it with scale_major=False."""
    sizes, ratios = (32, 64, 128, 256, 512), (0.5, 1.0, 2.0)
    d2 = []
    for size in sizes:
        for r in ratios:
            w = math.sqrt(size ** 2 / r)
            h = r * w
            d2.append([-w / 2, -h / 2, w / 2, h / 2])
    d2 = torch.tensor(d2)
    ours = AnchorGenerator(strides=[16], ratios=list(ratios), scales=[2, 4, 8, 16, 32],
                           scale_major=False).base_anchors[0]
    torch.testing.assert_close(ours, d2)
    default = AnchorGenerator(strides=[16], ratios=list(ratios),
                              scales=[2, 4, 8, 16, 32]).base_anchors[0]
    assert not torch.allclose(default, d2)  # the default order would permute the channels


def test_rpn_into_the_detector_and_rpn_errors(tmp_path, capsys):
    released = released_rpn_state(True, 3)
    src = tmp_path / 'rpn_lvis_866.pth'
    torch.save({'model': released}, src)
    # folded into a detector checkpoint as rpn.* (what RegionCLIPDetector.load_rpn strips)
    clip = make_clip(OPENAI_RN, seed=14)
    out = conv.convert_detector(released_detector_state(clip), clip.state_dict(), released)
    rpn_keys = {k[4:] for k in out if k.startswith('rpn.')}
    assert rpn_keys == set(conv.convert_rpn(released))
    assert 'bbox_head.rpn_cls.weight' in rpn_keys and 'neck.fpn_convs.3.conv.bias' in rpn_keys
    # --rpn must be an RPN file; --clip does not apply to one
    det_src = tmp_path / 'det.pth'
    torch.save({'model': released_detector_state(clip)}, det_src)
    assert conv.main([str(det_src), str(tmp_path / 'o.pth'), '--rpn', str(det_src)]) == 1
    assert 'not a detectron2 RPN checkpoint' in capsys.readouterr().err
    assert conv.main([str(src), str(tmp_path / 'o.pth'), '--clip', str(det_src)]) == 1
    assert 'is an RPN checkpoint' in capsys.readouterr().err
    # an unknown RPN key, and inconsistent head shapes
    with pytest.raises(KeyError, match='backbone.fpn_lateral6.weight'):
        conv.convert_rpn({**released, 'backbone.fpn_lateral6.weight': torch.zeros(1)})
    bad = {**released, 'proposal_generator.rpn_head.anchor_deltas.weight': torch.zeros(8, 16, 1, 1)}
    with pytest.raises(ValueError, match='anchor_deltas has 8 outputs, expected 4 x 3'):
        conv.convert_rpn(bad)
    # the converted RPN file is read with weights_only and holds only tensors
    dst = tmp_path / 'rpn_ours.pth'
    assert conv.main([str(src), str(dst)]) == 0
    state, meta = read_checkpoint(dst)
    assert meta['converted_from'] == str(src) and 'bbox_head.rpn_conv.weight' in state


def test_whole_detector_with_the_released_rpn_loads_strictly_and_predicts(tmp_path):
    """The published-row flow: the RPN converted alone (model.rpn_checkpoint) and the detector
    converted with --clip and --rpn (tools/test.py --checkpoint, a strict load)."""
    torch.save({'model': released_rpn_state(True, 3)}, tmp_path / 'rpn_lvis_866.pth')
    assert conv.main([str(tmp_path / 'rpn_lvis_866.pth'), str(tmp_path / 'rpn.pth')]) == 0
    clip = make_clip(OPENAI_RN, seed=15)
    _randomise_bn(clip)
    torch.save({'model': released_detector_state(clip)}, tmp_path / 'finetuned.pth')
    save_file(clip.state_dict(), str(tmp_path / 'clip.safetensors'))
    assert conv.main([str(tmp_path / 'finetuned.pth'), str(tmp_path / 'det.pth'), '--clip',
                      str(tmp_path / 'clip.safetensors'), '--rpn',
                      str(tmp_path / 'rpn_lvis_866.pth')]) == 0
    (tmp_path / 'rn.json').write_text(json.dumps(OPENAI_RN))
    cfg = dict(type='RegionCLIPDetector', data_preprocessor=PRE,
               backbone=dict(type='CLIPResNet', model=str(tmp_path / 'rn.json'),
                             pretrained=str(tmp_path / 'clip.safetensors')),
               vocabulary=['cat', 'dog'], templates=['a photo of a {}.'], proposal_source='rpn',
               rpn=mmdet_rpn(True), rpn_checkpoint=str(tmp_path / 'rpn.pth'),
               use_box_deltas=True, objectness='sigmoid')
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = MMDET_MODELS.build(cfg).eval()
    load_checkpoint_strict(det, tmp_path / 'det.pth')
    _region_check(det, clip)
    sample = DetDataSample()
    shape = (64, 96)
    sample.set_metainfo(dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                             scale_factor=(1.0, 1.0), batch_input_shape=shape))
    torch.manual_seed(0)
    images = torch.rand(1, 3, *shape) * 255
    with torch.no_grad():
        props = det.proposals(images, [sample])[0]
        out = det.predict(images, [sample])[0].pred_instances
    assert len(props.bboxes) > 0 and len(out.bboxes) > 0
    assert out.labels.max() < 2 and torch.isfinite(out.scores).all()
