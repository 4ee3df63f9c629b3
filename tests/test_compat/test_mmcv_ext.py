"""denseclip.compat's ``mmcv._ext``: mmcv's own Python ops on top of it against independent
computations (torchvision called directly, hand-written formulas, a line-by-line transcription of
mmcv's C++ soft-NMS, plain convolution).

``denseclip/compat`` is loaded by file path, so these tests do not import ``denseclip/__init__``.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch.testing import assert_close

COMPAT_DIR = Path(__file__).resolve().parents[2] / 'denseclip' / 'compat'
LOAD_COMPAT = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location(
    '_denseclip_compat', {str(COMPAT_DIR / '__init__.py')!r},
    submodule_search_locations=[{str(COMPAT_DIR)!r}])
compat = importlib.util.module_from_spec(spec)
sys.modules['_denseclip_compat'] = compat
spec.loader.exec_module(compat)
"""


def _load_compat() -> types.ModuleType:
    if '_denseclip_compat' not in sys.modules:
        exec(LOAD_COMPAT, {})
    return sys.modules['_denseclip_compat']


compat = _load_compat()
compat.install()
from mmcv import ops as mmcv_ops  # noqa: E402  (after install)


def _boxes(n: int, seed: int = 0) -> tuple:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 60
    boxes = torch.cat([xy, xy + 4 + torch.rand(n, 2, generator=g) * 30], 1)  # (n, 4)
    return boxes, torch.rand(n, generator=g)


def test_openmmlab_imports_after_install():
    code = LOAD_COMPAT + (
        'compat.install()\n'
        'import mmseg.models, mmdet.models\n'
        'from mmengine.utils.dl_utils import mmcv_full_available\n'
        'assert mmcv_full_available()\n'
    )
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]


def test_nms_and_batched_nms_match_torchvision():
    boxes, scores = _boxes(200)
    dets, keep = mmcv_ops.nms(boxes, scores, iou_threshold=0.5)
    expected = torchvision.ops.nms(boxes, scores, 0.5)
    assert_close(keep, expected)
    assert_close(dets, torch.cat([boxes[expected], scores[expected, None]], 1))

    idxs = torch.randint(0, 4, (200,), generator=torch.Generator().manual_seed(1))
    dets, keep = mmcv_ops.batched_nms(boxes, scores, idxs, dict(iou_threshold=0.5))
    expected = torchvision.ops.batched_nms(boxes, scores, idxs, 0.5)
    assert_close(keep, expected)
    assert_close(dets[:, -1], scores[expected])


def test_nms_hand_examples():
    # IoU(A, B) = 81 / 119 = 0.68 > 0.5; C is far away.
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]])
    _, keep = mmcv_ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    # offset=0: IoU = 36 / 81 = 0.44; legacy offset=1: widths + 1, IoU = 50 / 100 = 0.5.
    boxes = torch.tensor([[0.0, 0, 9, 9], [0, 0, 9, 4]])
    scores = torch.tensor([0.9, 0.8])
    assert mmcv_ops.nms(boxes, scores, 0.45, offset=0)[1].tolist() == [0, 1]
    assert mmcv_ops.nms(boxes, scores, 0.45, offset=1)[1].tolist() == [0]


def _softnms_reference(boxes, scores, thr, sigma, min_score, method, offset):
    """Line-by-line transcription of mmcv 2.1 ``softnms_cpu`` (csrc/pytorch/cpu/nms.cpp)."""
    b, sc = boxes.tolist(), scores.tolist()
    areas = [(x2 - x1 + offset) * (y2 - y1 + offset) for x1, y1, x2, y2 in b]
    inds, dets, n, i = list(range(len(b))), [], len(b), 0
    while i < n:
        m = max(range(i, n), key=lambda k: (sc[k], -k))  # first maximum
        for arr in (b, sc, areas, inds):
            arr[i], arr[m] = arr[m], arr[i]
        dets.append(b[i] + [sc[i]])
        pos = i + 1
        while pos < n:
            w = max(0.0, min(b[i][2], b[pos][2]) - max(b[i][0], b[pos][0]) + offset)
            h = max(0.0, min(b[i][3], b[pos][3]) - max(b[i][1], b[pos][1]) + offset)
            ovr = w * h / (areas[i] + areas[pos] - w * h)
            if method == 'gaussian':
                sc[pos] *= torch.tensor(-(ovr * ovr) / sigma).exp().item()
            elif ovr >= thr:
                sc[pos] *= 1 - ovr if method == 'linear' else 0.0
            if sc[pos] < min_score:
                for arr in (b, sc, areas, inds):
                    arr[pos] = arr[n - 1]
                n, pos = n - 1, pos - 1
            pos += 1
        i += 1
    return torch.tensor(dets, dtype=boxes.dtype), torch.tensor(inds[:n])


@pytest.mark.parametrize('method', ['naive', 'linear', 'gaussian'])
@pytest.mark.parametrize('offset', [0, 1])
def test_soft_nms_matches_mmcv_cpu_kernel(method, offset):
    boxes, scores = _boxes(60, seed=2)
    boxes, scores = boxes.double(), scores.double()
    dets, keep = mmcv_ops.soft_nms(boxes, scores, 0.3, 0.5, 0.05, method, offset)
    ref_dets, ref_keep = _softnms_reference(boxes, scores, 0.3, 0.5, 0.05, method, offset)
    assert 0 < len(keep) < len(boxes)
    assert_close(keep, ref_keep)
    assert_close(dets, ref_dets)


def test_soft_nms_docstring_example():
    # mmcv/ops/nms.py soft_nms docstring: 5 of the 6 boxes survive.
    boxes = torch.tensor(
        [[4.0, 3, 5, 3], [4, 3, 5, 4], [3, 1, 3, 1], [3, 1, 3, 1], [3, 1, 3, 1], [3, 1, 3, 1]]
    )
    scores = torch.tensor([0.9, 0.9, 0.5, 0.5, 0.4, 0.0])
    dets, keep = mmcv_ops.soft_nms(boxes, scores, 0.6, sigma=0.5)
    assert len(keep) == len(dets) == 5


def _roi_inputs(dtype=torch.float32):
    g = torch.Generator().manual_seed(3)
    feat = torch.randn(2, 3, 12, 15, generator=g, dtype=dtype)
    rois = torch.tensor(
        [[0, 1.0, 2.0, 20.0, 15.0], [1, 0.0, 0.0, 3.0, 3.0], [1, 10.3, 4.1, 28.9, 22.6]],
        dtype=dtype,
    )
    return feat, rois


@pytest.mark.parametrize('aligned', [True, False])
def test_roi_align_avg_matches_torchvision(aligned):
    feat, rois = _roi_inputs()
    grad = torch.randn(3, 3, 4, 5, generator=torch.Generator().manual_seed(4))
    x1, x2 = feat.clone().requires_grad_(), feat.clone().requires_grad_()
    out = mmcv_ops.RoIAlign((4, 5), 0.5, 2, 'avg', aligned)(x1, rois)
    expected = torchvision.ops.roi_align(x2, rois, (4, 5), 0.5, 2, aligned)
    assert_close(out, expected)
    (out * grad).sum().backward()
    (expected * grad).sum().backward()
    assert_close(x1.grad, x2.grad)


def test_roi_align_gradcheck():
    feat, rois = _roi_inputs(torch.float64)
    feat = feat[:, :1, :6, :7].requires_grad_()
    fn = lambda x: mmcv_ops.roi_align(x, rois * 0.4, (2, 3), 1.0, 0, 'avg', True)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (feat,))


@pytest.mark.parametrize('aligned', [True, False])
def test_roi_align_max_is_max_over_sub_bins(aligned):
    # Max over a bin's 2x2 samples = 2x2 max-pool of one-sample RoIAlign at twice the resolution.
    feat, rois = _roi_inputs()
    grad = torch.randn(3, 3, 4, 5, generator=torch.Generator().manual_seed(5))
    x1, x2 = feat.clone().requires_grad_(), feat.clone().requires_grad_()
    out = mmcv_ops.roi_align(x1, rois, (4, 5), 0.5, 2, 'max', aligned)
    fine = torchvision.ops.roi_align(x2, rois, (8, 10), 0.5, 1, aligned)
    expected = F.max_pool2d(fine, 2)
    assert_close(out, expected)
    (out * grad).sum().backward()
    (expected * grad).sum().backward()
    assert_close(x1.grad, x2.grad)


def _sigmoid_focal_reference(x, target, gamma, alpha, weight):
    p = x.sigmoid()
    is_t = F.one_hot(target, x.size(1) + 1)[:, : x.size(1)].bool()
    loss = torch.where(
        is_t, -alpha * (1 - p) ** gamma * p.log(), -(1 - alpha) * p**gamma * (1 - p).log()
    )
    return loss if weight is None else loss * weight[target][:, None]


@pytest.mark.parametrize('with_weight', [False, True])
@pytest.mark.parametrize('reduction', ['none', 'mean'])
def test_sigmoid_focal_loss_matches_formula(with_weight, reduction):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(7, 4, generator=g, dtype=torch.float64) * 3
    target = torch.tensor([0, 1, 2, 3, 4, 4, 1])  # 4 = background (no positive class)
    weight = torch.rand(4, generator=g, dtype=torch.float64) if with_weight else None
    if with_weight:
        target = target.clamp(max=3)  # mmcv indexes the class weight by target
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    loss = mmcv_ops.sigmoid_focal_loss(x1, target, 2.0, 0.25, weight, reduction)
    expected = _sigmoid_focal_reference(x2, target, 2.0, 0.25, weight)
    expected = expected.sum() / len(x) if reduction == 'mean' else expected
    assert_close(loss, expected)
    loss.backward(torch.ones_like(loss))
    expected.backward(torch.ones_like(expected))
    assert_close(x1.grad, x2.grad)


def test_softmax_focal_loss_matches_formula():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64) * 2
    target = torch.tensor([0, 4, 2, 2, 1, 3])
    weight = torch.rand(5, generator=g, dtype=torch.float64)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    loss = mmcv_ops.softmax_focal_loss(x1, target, 1.5, 0.25, weight, 'sum')
    pt = x2.softmax(1)[torch.arange(6), target]
    expected = (-0.25 * (1 - pt) ** 1.5 * pt.log() * weight[target]).sum()
    assert_close(loss, expected)
    loss.backward()
    expected.backward()
    assert_close(x1.grad, x2.grad)


def _dcn_inputs(offset_channels: int, seed: int = 8):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 9, 11, generator=g)
    offset = torch.randn(2, offset_channels, 9, 11, generator=g) * 2
    return x, offset


def test_deform_conv_zero_and_shift_offsets_are_plain_convs():
    torch.manual_seed(9)
    conv = mmcv_ops.DeformConv2d(4, 6, 3, stride=1, padding=1, groups=2, deform_groups=2)
    x, _ = _dcn_inputs(2 * 2 * 9)
    zero = torch.zeros(2, 2 * 2 * 9, 9, 11)
    assert_close(conv(x, zero), F.conv2d(x, conv.weight, padding=1, groups=2))
    # Layout check: channel 2k is the y shift, 2k+1 the x shift; x + 1 everywhere reads the
    # zero-padded input one column to the right.
    shift = zero.clone()
    shift[:, 1::2] = 1.0
    shifted = F.pad(F.pad(x, (1, 1, 1, 1))[..., 1:], (0, 1))
    assert_close(conv(x, shift), F.conv2d(shifted, conv.weight, groups=2))


def test_deform_conv_random_offsets_match_torchvision():
    torch.manual_seed(10)
    conv = mmcv_ops.DeformConv2d(4, 6, 3, stride=2, padding=2, dilation=2, deform_groups=2)
    x, offset = _dcn_inputs(2 * 2 * 9)
    offset = offset[..., :5, :6].contiguous()  # output grid is 5 x 6
    leaves = [t.clone().requires_grad_() for t in (x, offset, conv.weight.detach())]
    out = conv(x.requires_grad_(), offset.requires_grad_())
    expected = torchvision.ops.deform_conv2d(
        leaves[0], leaves[1], leaves[2], stride=2, padding=2, dilation=2
    )
    assert_close(out, expected)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    (expected * grad).sum().backward()
    for got, ref in zip((x.grad, offset.grad, conv.weight.grad), leaves):
        assert_close(got, ref.grad)


def test_modulated_deform_conv_matches_conv_and_torchvision():
    torch.manual_seed(11)
    conv = mmcv_ops.ModulatedDeformConv2d(4, 6, 3, padding=1, groups=2, deform_groups=1)
    x, offset = _dcn_inputs(2 * 9)
    mask = torch.rand(2, 9, 9, 11)
    zero, ones = torch.zeros_like(offset), torch.ones_like(mask)
    assert_close(conv(x, zero, ones), F.conv2d(x, conv.weight, conv.bias, padding=1, groups=2))

    params = (conv.weight.detach(), conv.bias.detach())
    leaves = [t.clone().requires_grad_() for t in (x, offset, mask, *params)]
    inputs = [t.requires_grad_() for t in (x, offset, mask)]
    out = conv(*inputs)
    expected = torchvision.ops.deform_conv2d(
        leaves[0], leaves[1], leaves[3], leaves[4], padding=1, mask=leaves[2]
    )
    assert_close(out, expected)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    (expected * grad).sum().backward()
    for got, ref in zip((*inputs, conv.weight, conv.bias), leaves):
        assert_close(got.grad, ref.grad)


def _require_fallback_ext():
    """Skip where a compiled ``mmcv._ext`` is installed: its deformable attention is CUDA-only."""
    if not sys.modules['mmcv._ext'].__spec__.origin.endswith('mmcv_ext.py'):
        pytest.skip('a compiled mmcv._ext is installed')


def _deform_attn_inputs(shapes, seed=0, queries=7, heads=2, dims=4, points=3, dtype=None):
    g = torch.Generator().manual_seed(seed)
    dtype = dtype or torch.float64
    B, L = 2, len(shapes)
    S = sum(h * w for h, w in shapes)
    value = torch.randn(B, S, heads, dims, generator=g, dtype=dtype)
    # locations a little outside [0, 1] too: the zero padding of the kernel
    loc = torch.rand(B, queries, heads, L, points, 2, generator=g, dtype=dtype) * 1.2 - 0.1
    weight = torch.rand(B, queries, heads, L, points, generator=g, dtype=dtype).softmax(-1)
    spatial = torch.tensor(shapes, dtype=torch.long)
    start = torch.cat([spatial.new_zeros(1), spatial.prod(1).cumsum(0)[:-1]])
    return value, spatial, start, loc, weight


@pytest.mark.parametrize('shapes', [[(6, 9)], [(8, 5), (4, 3), (2, 2)], [(5, 11), (3, 6)]])
def test_ms_deform_attn_matches_mmcv_pytorch_function(shapes):
    """mmcv's autograd Function (which calls the ext op, as on CUDA) against mmcv's own
    pure-PyTorch ``multi_scale_deformable_attn_pytorch``: values and all three gradients."""
    from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttnFunction,
                                                  multi_scale_deformable_attn_pytorch)
    _require_fallback_ext()
    value, spatial, start, loc, weight = _deform_attn_inputs(shapes)
    ours = [t.clone().requires_grad_() for t in (value, loc, weight)]
    ref = [t.clone().requires_grad_() for t in (value, loc, weight)]
    out = MultiScaleDeformableAttnFunction.apply(ours[0], spatial, start, ours[1], ours[2], 64)
    expected = multi_scale_deformable_attn_pytorch(ref[0], spatial, ref[1], ref[2])
    assert out.shape == (2, 7, 2 * 4)
    assert_close(out, expected)
    grad = torch.randn_like(out)
    (out * grad).sum().backward()
    (expected * grad).sum().backward()
    for got, want in zip(ours, ref):
        assert got.grad.abs().sum() > 0
        assert_close(got.grad, want.grad)
    # the backward keeps nothing once run; called without a training forward's kept samples it
    # samples again, with the same gradients
    ext = sys.modules['mmcv._ext']
    assert not sys.modules[ext.ms_deform_attn_forward.__module__]._SAMPLES
    grads = [torch.zeros_like(t) for t in (value, loc, weight)]
    ext.ms_deform_attn_backward(value, spatial, start, loc, weight, grad, *grads, im2col_step=64)
    for got, want in zip(grads, ref):
        assert_close(got, want.grad)


def test_ms_deform_attn_hand_example():
    """One level, one head, one point at a pixel centre reads that pixel; at the midpoint of
    two pixel centres, their mean; outside the map, zero."""
    _require_fallback_ext()
    ext = sys.modules['mmcv._ext']
    value = torch.arange(12.).view(1, 12, 1, 1)  # a 3 x 4 map: value[y, x] = 4y + x
    spatial, start = torch.tensor([[3, 4]]), torch.tensor([0])
    # (x, y) normalised: pixel (x=2, y=1) centre, midpoint of (0,0)-(1,0), and off the map
    loc = torch.tensor([[2.5 / 4, 1.5 / 3], [1.0 / 4, 0.5 / 3], [-1.0, -1.0]])
    loc = loc.view(1, 3, 1, 1, 1, 2)
    weight = torch.full((1, 3, 1, 1, 1), 2.0)
    out = ext.ms_deform_attn_forward(value, spatial, start, loc, weight, im2col_step=64)
    assert_close(out.flatten(), torch.tensor([2 * 6.0, 2 * 0.5, 0.0]))


def test_ms_deform_attn_rejects_inconsistent_levels():
    _require_fallback_ext()
    ext = sys.modules['mmcv._ext']
    value, spatial, start, loc, weight = _deform_attn_inputs([(4, 4), (2, 2)])
    with pytest.raises(ValueError, match=r'value has 20 keys, spatial_shapes \[\(4, 4\), '
                                         r'\(2, 3\)\] give 22'):
        ext.ms_deform_attn_forward(value, torch.tensor([[4, 4], [2, 3]]), start, loc, weight,
                                   im2col_step=64)


def test_missing_op_raises_when_called():
    ext = sys.modules['mmcv._ext']
    if not ext.__spec__.origin.endswith('mmcv_ext.py'):
        pytest.skip('a compiled mmcv._ext is installed')
    xyz = torch.rand(1, 8, 3)
    with pytest.raises(NotImplementedError, match=r'mmcv\._ext\.ball_query_forward .*compiled'):
        mmcv_ops.ball_query(0.0, 0.5, 4, xyz, xyz[:, :2].contiguous())


def test_install_twice_keeps_the_module():
    ext = sys.modules['mmcv._ext']
    compat.install()
    assert sys.modules['mmcv._ext'] is ext


class _FakeCompiledExt(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``mmcv._ext`` as if compiled; ``broken`` mimics an ABI mismatch on load."""

    def __init__(self, broken: bool):
        self.broken = broken

    def find_spec(self, name, path, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name == 'mmcv._ext' else None

    def create_module(self, spec):
        if self.broken:
            raise ImportError('mmcv/_ext.so: undefined symbol: _ZN3c10')
        return None

    def exec_module(self, module):
        module.nms = 'compiled nms'


@pytest.fixture
def no_ext(monkeypatch):
    """Removes ``mmcv._ext`` for one test; monkeypatch puts the original back."""
    import mmcv

    monkeypatch.delitem(sys.modules, 'mmcv._ext', raising=False)
    monkeypatch.delattr(mmcv, '_ext', raising=False)
    return monkeypatch


def test_compiled_ext_is_left_untouched(no_ext):
    fake = types.ModuleType('mmcv._ext')
    no_ext.setitem(sys.modules, 'mmcv._ext', fake)
    compat.install()
    assert sys.modules['mmcv._ext'] is fake

    no_ext.delitem(sys.modules, 'mmcv._ext')
    no_ext.setattr(sys, 'meta_path', [_FakeCompiledExt(broken=False), *sys.meta_path])
    compat.install()
    assert sys.modules['mmcv._ext'].nms == 'compiled nms'


def test_broken_compiled_ext_is_replaced(no_ext, caplog):
    no_ext.setattr(sys, 'meta_path', [_FakeCompiledExt(broken=True), *sys.meta_path])
    with caplog.at_level(logging.WARNING):
        compat.install()
    assert sys.modules['mmcv._ext'].nms is compat.mmcv_ext.IMPLEMENTED['nms']
    assert 'undefined symbol' in caplog.text
