"""PyTorch / torchvision versions of the mmcv 2.1 compiled ops that OpenMMLab models call.

Each function keeps the signature under which mmcv's Python wrappers call ``mmcv._ext`` (names
and argument names from mmcv 2.1.0 ``mmcv/ops/csrc/pytorch/pybind.cpp``): results are written
into the output tensors passed in (gradients too, into the zero-filled tensors mmcv allocates)
and scalar settings arrive as keywords. Backward passes recompute the forward
under autograd instead of porting mmcv's hand-written kernels.
"""
import math
from typing import Callable, Sequence, Tuple

import torch
from torch import Tensor
from torchvision import ops as tv_ops

__all__ = [
    'get_compiler_version',
    'get_compiling_cuda_version',
    'nms',
    'softnms',
    'roi_align_forward',
    'roi_align_backward',
    'sigmoid_focal_loss_forward',
    'sigmoid_focal_loss_backward',
    'softmax_focal_loss_forward',
    'softmax_focal_loss_backward',
]

_FLT_MIN = 1.1754943508222875e-38  # FLT_MIN: mmcv's focal-loss kernels clamp log() inputs to it


def vjp(
    fn: Callable[..., Tensor], inputs: Sequence[Tensor], grad_output: Tensor
) -> Tuple[Tensor, ...]:
    """Gradients of ``fn(*inputs)`` w.r.t. ``inputs``, contracted with ``grad_output``."""
    with torch.enable_grad():  # mmcv's backward runs under once_differentiable (no_grad)
        leaves = [t.detach().requires_grad_() for t in inputs]
        return torch.autograd.grad(fn(*leaves), leaves, grad_output)


def get_compiler_version() -> str:
    """Stands in for mmcv's build info (read by ``mmcv.utils.collect_env``)."""
    return 'n/a (denseclip.compat PyTorch fallback, no compiled mmcv)'


get_compiling_cuda_version = get_compiler_version


# ---- NMS: mmcv/ops/nms.py NMSop, SoftNMSop; kernels in csrc/pytorch/cpu/nms.cpp ----
def nms(boxes: Tensor, scores: Tensor, iou_threshold: float, offset: int) -> Tensor:
    """Greedy NMS (mmcv ``nms_cpu``); a box is dropped when its IoU with a kept one is > thr.

    Args:
        boxes: (N, 4) ``x1, y1, x2, y2``.
        scores: (N,).
        iou_threshold: IoU above which the lower-scored box is suppressed.
        offset: 0, or 1 for the legacy convention where a box is ``x2 - x1 + 1`` wide.

    Returns:
        (M,) int64 indices of the kept boxes, by decreasing score.
    """
    if offset not in (0, 1):
        raise ValueError(f'mmcv._ext.nms: offset={offset!r}; expected 0 or 1')
    # Adding the offset to x2, y2 turns the +1 areas and intersections into torchvision's.
    boxes = boxes + boxes.new_tensor([0.0, 0.0, offset, offset])
    return tv_ops.nms(boxes, scores, float(iou_threshold))


def softnms(
    boxes: Tensor,
    scores: Tensor,
    dets: Tensor,
    iou_threshold: float,
    sigma: float,
    min_score: float,
    method: int,
    offset: int,
) -> Tensor:
    """Soft-NMS (mmcv ``softnms_cpu``), vectorised over the boxes compared to each pick.

    Args:
        boxes: (N, 4); scores: (N,).
        dets: (N, 5) output; row i gets the i-th picked box and its decayed score.
        method: 0 naive (drop), 1 linear (``1 - iou``), 2 gaussian (``exp(-iou^2 / sigma)``).
        offset: 0 or 1, as in ``nms``.

    Returns:
        (M,) int64 indices of the kept boxes, in pick order.
    """
    if method not in (0, 1, 2):
        raise ValueError(f'mmcv._ext.softnms: method={method!r}; expected 0, 1 or 2')
    state = torch.cat([boxes, scores[:, None]], 1).clone()  # (N, 5) x1 y1 x2 y2 score
    areas = (state[:, 2] - state[:, 0] + offset) * (state[:, 3] - state[:, 1] + offset)
    inds = torch.arange(boxes.size(0), device=boxes.device)
    n, i = boxes.size(0), 0
    while i < n:
        pick = i + int(state[i:n, 4].argmax())  # first maximum, as the kernel's strict '<'
        swap = torch.tensor([pick, i], device=boxes.device)
        for t in (state, areas, inds):
            t[[i, pick]] = t[swap]
        dets[i] = state[i]
        rest = state[i + 1 : n]  # (L, 5)
        wh = torch.minimum(rest[:, 2:4], state[i, 2:4]) - torch.maximum(rest[:, :2], state[i, :2])
        inter = (wh + offset).clamp(min=0).prod(1)
        iou = inter / (areas[i] + areas[i + 1 : n] - inter)
        if method == 2:
            weight = torch.exp(-(iou * iou) / sigma)
        else:
            weight = torch.where(iou >= iou_threshold, 1 - iou if method == 1 else 0.0, 1.0)
        rest[:, 4] *= weight
        dropped = rest[:, 4] < min_score
        kept = int((~dropped).sum())
        if kept < len(rest):
            # The kernel fills each dropped slot with the last surviving box: holes in the first
            # ``kept`` slots take the survivors beyond them, last first.
            order = torch.arange(len(rest), device=boxes.device)
            holes = dropped[:kept].nonzero()[:, 0]
            donors = (~dropped[kept:]).nonzero()[:, 0] + kept
            order[holes] = donors.flip(0)
            sl = slice(i + 1, n)
            state[sl], areas[sl], inds[sl] = state[sl][order], areas[sl][order], inds[sl][order]
        n, i = i + 1 + kept, i + 1
    return inds[:n]


# ---- RoIAlign: mmcv/ops/roi_align.py RoIAlignFunction; csrc/pytorch/cpu/roi_align.cpp ----
def _bilinear_taps(y: Tensor, x: Tensor, height: int, width: int) -> Tuple[Tensor, Tensor]:
    """Flat pixel indices and weights of the 4 bilinear taps at (y, x), mmcv's border rules.

    Returns:
        index, weight: each ``y.shape + (4,)``; samples outside ``[-1, H] x [-1, W]`` get weight 0.
    """
    outside = (y < -1) | (y > height) | (x < -1) | (x > width)
    y, x = y.clamp(min=0), x.clamp(min=0)
    y0, x0 = y.floor().clamp(max=height - 1), x.floor().clamp(max=width - 1)
    y, x = y.clamp(max=height - 1), x.clamp(max=width - 1)  # the kernel's y = y_low at the edge
    y1, x1 = (y0 + 1).clamp(max=height - 1), (x0 + 1).clamp(max=width - 1)
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    weight = torch.stack([hy * hx, hy * lx, ly * hx, ly * lx], -1) * (~outside)[..., None]
    rows, cols = torch.stack([y0, y0, y1, y1], -1), torch.stack([x0, x1, x0, x1], -1)
    return (rows * width + cols).long(), weight


def _roi_align_max_one(
    feat: Tensor, roi: Tensor, size: Tuple[int, int], scale: float, ratio: int, aligned: bool
) -> Tuple[Tensor, Tensor, Tensor]:
    """Max-mode RoIAlign of one RoI on ``feat`` (C, H, W).

    Returns:
        values, argmax y, argmax x: each (C, ph, pw); the argmax is a sample's (y, x) position.
    """
    (ph, pw), (C, H, W) = size, feat.shape
    start = roi[1:3] * scale - (0.5 if aligned else 0.0)  # (x1, y1)
    extent = roi[3:5] * scale - (0.5 if aligned else 0.0) - start  # (w, h)
    if not aligned:
        extent = extent.clamp(min=1)
    (bw, bh), (x_start, y_start) = extent / extent.new_tensor([pw, ph]), start
    gh = ratio if ratio > 0 else math.ceil(float(extent[1] / ph))
    gw = ratio if ratio > 0 else math.ceil(float(extent[0] / pw))
    if gh * gw == 0:  # empty grid: the kernel keeps its initial max of -10000 and argmax -1
        full = feat.new_full((C, ph, pw), -10000.0)
        return full, torch.full_like(full, -1.0), torch.full_like(full, -1.0)
    ar = lambda n: torch.arange(n, dtype=feat.dtype, device=feat.device)  # noqa: E731
    ys = y_start + ar(ph)[:, None] * bh + (ar(gh) + 0.5)[None] * bh / gh  # (ph, gh)
    xs = x_start + ar(pw)[:, None] * bw + (ar(gw) + 0.5)[None] * bw / gw  # (pw, gw)
    ys = ys[:, None, :, None].expand(ph, pw, gh, gw).reshape(ph, pw, gh * gw)
    xs = xs[None, :, None, :].expand(ph, pw, gh, gw).reshape(ph, pw, gh * gw)
    index, weight = _bilinear_taps(ys, xs, H, W)  # (ph, pw, S, 4)
    vals = (feat.reshape(C, H * W)[:, index] * weight).sum(-1)  # (C, ph, pw, S)
    best = vals.argmax(-1, keepdim=True)  # (C, ph, pw, 1): first maximum in (iy, ix) order
    out = vals.gather(-1, best)[..., 0]
    found = out > -10000  # the kernel's running max starts at -10000
    arg_y = torch.where(found, ys.expand(C, -1, -1, -1).gather(-1, best)[..., 0], -1.0)
    arg_x = torch.where(found, xs.expand(C, -1, -1, -1).gather(-1, best)[..., 0], -1.0)
    return out.clamp(min=-10000), arg_y, arg_x


def roi_align_forward(
    input: Tensor,
    rois: Tensor,
    output: Tensor,
    argmax_y: Tensor,
    argmax_x: Tensor,
    aligned_height: int,
    aligned_width: int,
    spatial_scale: float,
    sampling_ratio: int,
    pool_mode: int,
    aligned: bool,
) -> None:
    """RoIAlign forward into ``output`` (K, C, ph, pw); max mode also fills ``argmax_y/x``.

    Args:
        input: (B, C, H, W) features; rois: (K, 5) ``batch_index, x1, y1, x2, y2``.
        pool_mode: 0 max, 1 average over each bin's samples (torchvision's ``roi_align``).
        aligned: shift boxes by -0.5 pixel (True) or use the legacy >= 1 pixel boxes.
    """
    size = (aligned_height, aligned_width)
    if pool_mode == 1:
        output.copy_(tv_ops.roi_align(input, rois, size, spatial_scale, sampling_ratio, aligned))
    elif pool_mode == 0:
        for k, roi in enumerate(rois):
            feat = input[int(roi[0])]
            res = _roi_align_max_one(feat, roi, size, spatial_scale, sampling_ratio, aligned)
            for dst, src in zip((output, argmax_y, argmax_x), res):
                dst[k] = src
    else:
        raise ValueError(f'mmcv._ext.roi_align_forward: pool_mode={pool_mode!r}; expected 0 or 1')


def roi_align_backward(
    grad_output: Tensor,
    rois: Tensor,
    argmax_y: Tensor,
    argmax_x: Tensor,
    grad_input: Tensor,
    aligned_height: int,
    aligned_width: int,
    spatial_scale: float,
    sampling_ratio: int,
    pool_mode: int,
    aligned: bool,
) -> None:
    """Accumulate the RoIAlign input gradient (B, C, H, W) into ``grad_input``."""
    if pool_mode == 1:

        def pool(x: Tensor) -> Tensor:
            size = (aligned_height, aligned_width)
            return tv_ops.roi_align(x, rois, size, spatial_scale, sampling_ratio, aligned)

        # The op is linear, so the input values do not matter for its gradient.
        grad_input.add_(vjp(pool, [torch.zeros_like(grad_input)], grad_output)[0])
    elif pool_mode == 0:  # scatter each bin's gradient to the taps of its argmax sample
        B, C, H, W = grad_input.shape
        index, weight = _bilinear_taps(argmax_y, argmax_x, H, W)  # (K, C, ph, pw, 4)
        weight = weight * (argmax_y != -1)[..., None]
        plane = rois[:, 0].long()[:, None] * C + torch.arange(C, device=rois.device)  # (K, C)
        index = index + (plane * H * W)[:, :, None, None, None]
        grads = (grad_output[..., None] * weight).flatten()
        grad_input.view(-1).index_add_(0, index.flatten(), grads)
    else:
        raise ValueError(f'mmcv._ext.roi_align_backward: pool_mode={pool_mode!r}; expected 0 or 1')


# ---- Focal losses: mmcv/ops/focal_loss.py; csrc/common/cuda/*_focal_loss_cuda_kernel.cuh ----
def _label_weight(
    weight: Tensor, target: Tensor, num_classes: int, op: str, negative_ok: bool
) -> Tensor:
    """``weight[target]`` (N,), as mmcv's kernels index it; ones if ``weight`` is empty."""
    if weight.numel() == 0:
        return torch.ones_like(target, dtype=weight.dtype)
    bad = (target >= num_classes) | ((target < 0) & (not negative_ok))
    if bad.any():
        raise ValueError(
            f'mmcv._ext.{op}: a class weight is given and target holds {target[bad][0].item()}, '
            f'outside [0, {num_classes}); mmcv indexes the weight by target label, so drop the '
            'weight or apply it outside the loss'
        )
    return weight[target.clamp(min=0)]


def _sigmoid_focal_terms(input: Tensor, target: Tensor) -> Tuple[Tensor, Tensor]:
    """Sigmoid probabilities (N, K) and the one-hot mask of each row's target class."""
    classes = torch.arange(input.size(1), device=input.device)
    return input.sigmoid(), target[:, None] == classes


def sigmoid_focal_loss_forward(
    input: Tensor, target: Tensor, weight: Tensor, output: Tensor, gamma: float, alpha: float
) -> None:
    """Per-element sigmoid focal loss (N, K) into ``output``.

    ``-alpha (1-p)^gamma log p`` at the target class, ``-(1-alpha) p^gamma log(1-p)`` elsewhere,
    times ``weight[target]`` if ``weight`` is non-empty. A target of K (background) or -1 has
    no positive class.
    """
    p, is_target = _sigmoid_focal_terms(input, target)
    term_p = (1 - p).pow(gamma) * p.clamp(min=_FLT_MIN).log()
    term_n = p.pow(gamma) * (1 - p).clamp(min=_FLT_MIN).log()
    loss = torch.where(is_target, -alpha * term_p, -(1 - alpha) * term_n)
    w = _label_weight(weight, target, input.size(1), 'sigmoid_focal_loss_forward', False)
    output.copy_(loss * w[:, None])


def sigmoid_focal_loss_backward(
    input: Tensor, target: Tensor, weight: Tensor, grad_input: Tensor, gamma: float, alpha: float
) -> None:
    """d loss / d input (N, K) of ``sigmoid_focal_loss_forward`` into ``grad_input``."""
    p, is_target = _sigmoid_focal_terms(input, target)
    term_p = (1 - p).pow(gamma) * (1 - p - gamma * p * p.clamp(min=_FLT_MIN).log())
    term_n = p.pow(gamma) * (gamma * (1 - p) * (1 - p).clamp(min=_FLT_MIN).log() - p)
    grad = torch.where(is_target, -alpha * term_p, -(1 - alpha) * term_n)
    w = _label_weight(weight, target, input.size(1), 'sigmoid_focal_loss_backward', False)
    grad_input.copy_(grad * w[:, None])


def _softmax_focal_terms(softmax: Tensor, target: Tensor) -> Tuple[Tensor, Tensor]:
    """Probability of each row's target class (N,) and whether the row counts (target >= 0)."""
    return softmax.gather(1, target.clamp(min=0)[:, None])[:, 0], target >= 0


def softmax_focal_loss_forward(
    input: Tensor, target: Tensor, weight: Tensor, output: Tensor, gamma: float, alpha: float
) -> None:
    """Per-sample ``-alpha (1-p_t)^gamma log p_t`` (N,) into ``output``; ``input`` is softmax."""
    pt, valid = _softmax_focal_terms(input, target)
    loss = -alpha * (1 - pt).pow(gamma) * pt.clamp(min=_FLT_MIN).log() * valid
    w = _label_weight(weight, target, input.size(1), 'softmax_focal_loss_forward', True)
    output.copy_(loss * w)


def softmax_focal_loss_backward(
    input: Tensor,
    target: Tensor,
    weight: Tensor,
    buff: Tensor,
    grad_input: Tensor,
    gamma: float,
    alpha: float,
) -> None:
    """d loss / d logits (N, K) into ``grad_input``; ``buff`` (N,) gets d loss / d log p_t."""
    pt, valid = _softmax_focal_terms(input, target)
    log_pt = pt.clamp(min=_FLT_MIN).log()
    d_log_pt = alpha * (-(1 - pt).pow(gamma) + gamma * (1 - pt).pow(gamma - 1) * pt * log_pt)
    w = _label_weight(weight, target, input.size(1), 'softmax_focal_loss_backward', True)
    buff.copy_(d_log_pt * valid * w)
    one_hot = target[:, None] == torch.arange(input.size(1), device=input.device)
    grad_input.copy_(buff[:, None] * (one_hot.to(input) - input))

