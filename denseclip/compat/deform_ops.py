"""Deformable convolution (DCNv1, DCNv2) and multi-scale deformable attention for ``mmcv._ext``.

Deformable convolution is backed by torchvision, deformable attention by ``F.grid_sample``.

Signatures follow mmcv 2.1.0 ``mmcv/ops/deform_conv.py`` ``DeformConv2dFunction`` and
``modulated_deform_conv.py`` ``ModulatedDeformConv2dFunction`` (argument names from
``csrc/pytorch/pybind.cpp``). mmcv's and torchvision's offsets share one layout, from the
original DCN code: per deform group, channel 2k is the y and 2k+1 the x shift of kernel tap k;
the DCNv2 mask has one channel per tap. Groups are read from the tensor shapes by torchvision.

Deviation: ``columns`` and ``ones`` (mmcv's scratch buffers) and ``im2col_step`` (its batch
chunking, which does not change the result) are accepted for the calling convention only.
"""
import weakref
from typing import Dict, Iterator, List, Optional, Tuple

import torch

import torch.nn.functional as F
from torch import Tensor
from torchvision import ops as tv_ops

from .ops import vjp

__all__ = [
    'deform_conv_forward',
    'deform_conv_backward_input',
    'deform_conv_backward_parameters',
    'modulated_deform_conv_forward',
    'modulated_deform_conv_backward',
    'ms_deform_attn_forward',
    'ms_deform_attn_backward',
]

Pair = Tuple[int, int]


def _check_groups(x: Tensor, offset: Tensor, weight: Tensor, group: int, deform_group: int) -> None:
    """Raise if ``group``/``deform_group`` disagree with the shapes torchvision reads them from."""
    taps = weight.size(2) * weight.size(3)
    if weight.size(1) * group != x.size(1) or offset.size(1) != 2 * deform_group * taps:
        raise ValueError(
            f'mmcv._ext deform conv: input {tuple(x.shape)}, weight {tuple(weight.shape)} and '
            f'offset {tuple(offset.shape)} do not fit group={group}, '
            f'deformable_group={deform_group}; expected weight.size(1) * group == C_in and '
            'offset.size(1) == 2 * deformable_group * kH * kW'
        )


def _deform_conv(
    x: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Optional[Tensor],
    mask: Optional[Tensor],
    geometry: Tuple[Pair, Pair, Pair],
) -> Tensor:
    """torchvision's deform_conv2d; ``geometry`` is ((stride), (padding), (dilation)), (h, w)."""
    stride, padding, dilation = geometry
    return tv_ops.deform_conv2d(
        x, offset, weight, bias, stride=stride, padding=padding, dilation=dilation, mask=mask
    )


def deform_conv_forward(
    input: Tensor,
    weight: Tensor,
    offset: Tensor,
    output: Tensor,
    columns: Tensor,
    ones: Tensor,
    kW: int,
    kH: int,
    dW: int,
    dH: int,
    padW: int,
    padH: int,
    dilationW: int,
    dilationH: int,
    group: int,
    deformable_group: int,
    im2col_step: int,
) -> None:
    """DCNv1 forward into ``output`` (B, C_out, H_out, W_out).

    Args:
        input: (B, C_in, H, W); weight: (C_out, C_in / group, kH, kW).
        offset: (B, 2 * deformable_group * kH * kW, H_out, W_out).
    """
    _check_groups(input, offset, weight, group, deformable_group)
    geometry = ((dH, dW), (padH, padW), (dilationH, dilationW))
    output.copy_(_deform_conv(input, offset, weight, None, None, geometry))


def deform_conv_backward_input(
    input: Tensor,
    offset: Tensor,
    gradOutput: Tensor,
    gradInput: Tensor,
    gradOffset: Tensor,
    weight: Tensor,
    columns: Tensor,
    kW: int,
    kH: int,
    dW: int,
    dH: int,
    padW: int,
    padH: int,
    dilationW: int,
    dilationH: int,
    group: int,
    deformable_group: int,
    im2col_step: int,
) -> None:
    """Accumulate d loss / d input and d loss / d offset into ``gradInput``, ``gradOffset``."""
    _check_groups(input, offset, weight, group, deformable_group)
    geometry = ((dH, dW), (padH, padW), (dilationH, dilationW))

    def conv(x: Tensor, off: Tensor) -> Tensor:
        return _deform_conv(x, off, weight, None, None, geometry)

    grad_x, grad_offset = vjp(conv, [input, offset], gradOutput)
    gradInput.add_(grad_x)
    gradOffset.add_(grad_offset)


def deform_conv_backward_parameters(
    input: Tensor,
    offset: Tensor,
    gradOutput: Tensor,
    gradWeight: Tensor,
    columns: Tensor,
    ones: Tensor,
    kW: int,
    kH: int,
    dW: int,
    dH: int,
    padW: int,
    padH: int,
    dilationW: int,
    dilationH: int,
    group: int,
    deformable_group: int,
    scale: float,
    im2col_step: int,
) -> None:
    """Accumulate ``scale`` * d loss / d weight into ``gradWeight`` (mmcv's addmm, beta=1)."""
    _check_groups(input, offset, gradWeight, group, deformable_group)
    geometry = ((dH, dW), (padH, padW), (dilationH, dilationW))

    def conv(w: Tensor) -> Tensor:
        return _deform_conv(input, offset, w, None, None, geometry)

    # The conv is linear in the weight, so the point the gradient is taken at does not matter.
    gradWeight.add_(vjp(conv, [gradWeight], gradOutput)[0], alpha=scale)


def modulated_deform_conv_forward(
    input: Tensor,
    weight: Tensor,
    bias: Tensor,
    ones: Tensor,
    offset: Tensor,
    mask: Tensor,
    output: Tensor,
    columns: Tensor,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dilation_h: int,
    dilation_w: int,
    group: int,
    deformable_group: int,
    with_bias: bool,
) -> None:
    """DCNv2 forward into ``output``; ``mask`` (B, deformable_group * kH * kW, H_out, W_out)."""
    _check_groups(input, offset, weight, group, deformable_group)
    geometry = ((stride_h, stride_w), (pad_h, pad_w), (dilation_h, dilation_w))
    bias_or_none = bias if with_bias else None  # mmcv passes an empty tensor for no bias
    output.copy_(_deform_conv(input, offset, weight, bias_or_none, mask, geometry))


def modulated_deform_conv_backward(
    input: Tensor,
    weight: Tensor,
    bias: Tensor,
    ones: Tensor,
    offset: Tensor,
    mask: Tensor,
    columns: Tensor,
    grad_input: Tensor,
    grad_weight: Tensor,
    grad_bias: Tensor,
    grad_offset: Tensor,
    grad_mask: Tensor,
    grad_output: Tensor,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dilation_h: int,
    dilation_w: int,
    group: int,
    deformable_group: int,
    with_bias: bool,
) -> None:
    """Accumulate the gradients of every DCNv2 input into the ``grad_*`` tensors."""
    _check_groups(input, offset, weight, group, deformable_group)
    geometry = ((stride_h, stride_w), (pad_h, pad_w), (dilation_h, dilation_w))
    inputs = [input, offset, mask, weight] + ([bias] if with_bias else [])

    def conv(x: Tensor, off: Tensor, m: Tensor, w: Tensor, b: Optional[Tensor] = None) -> Tensor:
        return _deform_conv(x, off, w, b, m, geometry)

    grads = vjp(conv, inputs, grad_output)
    outputs = [grad_input, grad_offset, grad_mask, grad_weight, grad_bias][: len(grads)]
    for dst, grad in zip(outputs, grads):
        dst.add_(grad)


# ---- multi-scale deformable attention: mmcv/ops/multi_scale_deform_attn.py
# MultiScaleDeformableAttnFunction; kernels in csrc/common/cuda/ms_deform_attn_cuda_kernel.cuh
# The samples of a forward whose inputs require grad, for its backward (see _keep_samples).
_SAMPLES: Dict[Tuple[int, ...], List[Tensor]] = {}


def _samples_key(*tensors: Tensor) -> Tuple[int, ...]:
    return tuple(n for t in tensors for n in (id(t), t._version))


def _keep_samples(value: Tensor, loc: Tensor, weight: Tensor, samples: List[Tensor]) -> None:
    """Keep a training forward's bilinear samples until its backward takes them.

    mmcv's ``MultiScaleDeformableAttnFunction`` saves the forward's inputs, not its samples, and
    the attention-weight gradient needs them: without this the backward would sample every
    level again. The entry is dropped by the backward, or when ``value`` is freed (a forward
    whose backward never runs), so nothing outlives the autograd graph; a backward that finds
    no entry samples again. The samples are what autograd keeps for mmcv's pure-PyTorch
    function (its stacked samples), so memory is the same.
    """
    key = _samples_key(value, loc, weight)
    _SAMPLES[key] = samples
    weakref.finalize(value, _SAMPLES.pop, key, None)


def _sample_levels(value: Tensor, shapes: List[Tuple[int, int]], grids: Tensor
                   ) -> Iterator[Tuple[int, slice, Tensor, Tensor]]:
    """Per level: (level, its slice of the keys, value map (B*H, D, h, w), grid (B*H, Q, P, 2)).
    """
    B, _, H, D = value.shape
    start = 0
    for level, (h, w) in enumerate(shapes):
        keys = slice(start, start + h * w)
        start += h * w
        v = value[:, keys].permute(0, 2, 3, 1).reshape(B * H, D, h, w)
        yield level, keys, v, grids[level]


def _grids_weights(loc: Tensor, weight: Tensor) -> Tuple[Tensor, Tensor]:
    """``grid_sample`` grids (L, B*H, Q, P, 2) in [-1, 1] and weights (L, B*H, 1, Q, P), each
    level's contiguous."""
    B, Q, H, L, P, _ = loc.shape
    grids = (2 * loc - 1).permute(3, 0, 2, 1, 4, 5).reshape(L, B * H, Q, P, 2)
    return grids, weight.permute(3, 0, 2, 1, 4).reshape(L, B * H, 1, Q, P)


def _ms_deform_attn(value: Tensor, shapes: List[Tuple[int, int]], loc: Tensor,
                    weight: Tensor) -> Tuple[Tensor, List[Tensor]]:
    """(B, Q, H * D): each query's weighted sum of bilinear samples of ``value``, and the
    samples (B*H, D, Q, P) of each level.

    The sum of mmcv's ``multi_scale_deformable_attn_pytorch``, accumulated level by level
    instead of over the stacked (B * H, D, Q, L * P) samples of every level, with each level's
    grid and weights contiguous: the same samples (``grid_sample`` with zero padding,
    ``align_corners=False``, i.e. the CUDA kernel's ``loc * size - 0.5`` pixel coordinates)
    and weights, 1.3x faster on the CPU (``tools/benchmark.py --deform-attn``).
    """
    B, _, H, D = value.shape
    Q = loc.shape[1]
    grids, weights = _grids_weights(loc, weight)
    out = value.new_zeros(B * H, D, Q)
    samples = []
    for level, _, v, grid in _sample_levels(value, shapes, grids):
        sampled = F.grid_sample(v, grid, mode='bilinear', padding_mode='zeros',
                                align_corners=False)  # (B*H, D, Q, P)
        samples.append(sampled)
        out += (sampled * weights[level]).sum(-1)  # each query's P samples, weighted
    return out.view(B, H * D, Q).transpose(1, 2).contiguous(), samples


def _level_shapes(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor
                  ) -> List[Tuple[int, int]]:
    """The (h, w) of each level, checked against ``value`` and ``level_start_index``."""
    shapes = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
    starts = [0]
    for h, w in shapes[:-1]:
        starts.append(starts[-1] + h * w)
    if (sum(h * w for h, w in shapes) != value.size(1)
            or level_start_index.tolist() != starts):
        raise ValueError(
            f'mmcv._ext ms_deform_attn: value has {value.size(1)} keys, spatial_shapes '
            f'{shapes} give {sum(h * w for h, w in shapes)} with level starts {starts}, '
            f'level_start_index is {level_start_index.tolist()}')
    return shapes


def ms_deform_attn_forward(value: Tensor, value_spatial_shapes: Tensor,
                           value_level_start_index: Tensor, sampling_locations: Tensor,
                           attention_weights: Tensor, im2col_step: int) -> Tensor:
    """Multi-scale deformable attention (Zhu et al., Deformable DETR, ICLR 2021, eq. 3).

    Args:
        value: (B, S, H, D), the L levels' keys flattened and concatenated.
        value_spatial_shapes: (L, 2) int (h, w) of each level.
        value_level_start_index: (L,) offset of each level in S.
        sampling_locations: (B, Q, H, L, P, 2) normalised (x, y) in [0, 1].
        attention_weights: (B, Q, H, L, P).
        im2col_step: mmcv's batch chunking; accepted for the calling convention only.

    Returns:
        (B, Q, H * D).
    """
    shapes = _level_shapes(value, value_spatial_shapes, value_level_start_index)
    out, samples = _ms_deform_attn(value, shapes, sampling_locations, attention_weights)
    if any(t.requires_grad for t in (value, sampling_locations, attention_weights)):
        _keep_samples(value, sampling_locations, attention_weights, samples)
    return out


def ms_deform_attn_backward(value: Tensor, value_spatial_shapes: Tensor,
                            value_level_start_index: Tensor, sampling_locations: Tensor,
                            attention_weights: Tensor, grad_output: Tensor, grad_value: Tensor,
                            grad_sampling_loc: Tensor, grad_attn_weight: Tensor,
                            im2col_step: int) -> None:
    """Accumulate the gradients of ``value``, the sampling locations and the attention weights
    into ``grad_value``, ``grad_sampling_loc`` and ``grad_attn_weight`` (as the kernel adds).

    Per level, with G = weight ⊗ grad_output: d/d value and d/d grid from ATen's
    ``grid_sampler_2d_backward`` (the kernel of ``grid_sample``'s own autograd), d/d weight
    = ⟨sample, grad_output⟩ from the forward's kept samples (sampled again if absent).
    """
    shapes = _level_shapes(value, value_spatial_shapes, value_level_start_index)
    samples = _SAMPLES.pop(_samples_key(value, sampling_locations, attention_weights), None)
    B, _, H, D = value.shape
    Q = sampling_locations.shape[1]
    grids, weights = _grids_weights(sampling_locations, attention_weights)
    # (B*H, D, Q, 1), as the samples' (B*H, D, Q, P)
    grad_t = grad_output.view(B, Q, H * D).transpose(1, 2).reshape(B * H, D, Q, 1)
    grad_grids, grad_weights = [], []
    for level, keys, v, grid in _sample_levels(value, shapes, grids):
        sampled = samples[level] if samples is not None else F.grid_sample(
            v, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
        grad_weights.append((sampled * grad_t).sum(1))  # (B*H, Q, P)
        grad_sampled = weights[level] * grad_t  # (B*H, D, Q, P)
        # interpolation 0: bilinear, padding 0: zeros
        grad_v, grad_grid = torch.ops.aten.grid_sampler_2d_backward(
            grad_sampled, v, grid, 0, 0, False, [True, True])
        h, w = shapes[level]
        grad_value[:, keys] += grad_v.view(B, H, D, h * w).permute(0, 3, 1, 2)
        grad_grids.append(grad_grid)
    L, P = attention_weights.shape[3:]
    # d grid / d loc = 2; back to (B, Q, H, L, P, ...)
    grad_loc = 2 * torch.stack(grad_grids, dim=2).view(B, H, Q, L, P, 2).transpose(1, 2)
    grad_sampling_loc += grad_loc
    grad_attn_weight += torch.stack(grad_weights, dim=2).view(B, H, Q, L, P).transpose(1, 2)
