"""Deformable convolution (DCNv1, DCNv2) for ``mmcv._ext``, backed by torchvision.

Signatures follow mmcv 2.1.0 ``mmcv/ops/deform_conv.py`` ``DeformConv2dFunction`` and
``modulated_deform_conv.py`` ``ModulatedDeformConv2dFunction`` (argument names from
``csrc/pytorch/pybind.cpp``). mmcv's and torchvision's offsets share one layout, from the
original DCN code: per deform group, channel 2k is the y and 2k+1 the x shift of kernel tap k;
the DCNv2 mask has one channel per tap. Groups are read from the tensor shapes by torchvision.

Deviation: ``columns`` and ``ones`` (mmcv's scratch buffers) and ``im2col_step`` (its batch
chunking, which does not change the result) are accepted for the calling convention only.
"""
from typing import Optional, Tuple

from torch import Tensor
from torchvision import ops as tv_ops

from .ops import vjp

__all__ = [
    'deform_conv_forward',
    'deform_conv_backward_input',
    'deform_conv_backward_parameters',
    'modulated_deform_conv_forward',
    'modulated_deform_conv_backward',
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
