"""Helpers shared by lowerings: window geometry (padding as TFLite computes it) and requantization constants."""

from __future__ import annotations

from tinydeploy.engine.quant import activation_range, quantize_multiplier
from tinydeploy.engine.registry import LoweringContext, c_struct
from tinydeploy.model.tflite import Tensor


def output_size(padding: str, size: int, filter_size: int, stride: int, dilation: int) -> int:
    effective = (filter_size - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - effective + stride) // stride


def leading_padding(size: int, filter_size: int, stride: int, dilation: int, out: int) -> int:
    effective = (filter_size - 1) * dilation + 1
    return max(((out - 1) * stride + effective - size) // 2, 0)


def window(ctx: LoweringContext, source: Tensor, result: Tensor, filter_height: int, filter_width: int) -> str:
    """The td_window initializer of a NHWC sliding-window op, checked against the output shape."""
    options = ctx.op.options
    if len(source.shape) != 4 or len(result.shape) != 4:
        raise ctx.fail(f"expected 4-D NHWC tensors, got {list(source.shape)} -> {list(result.shape)}")
    stride_h, stride_w = options.get("strideH", 1), options.get("strideW", 1)
    dilation_h, dilation_w = options.get("dilationHFactor", 1), options.get("dilationWFactor", 1)
    if min(stride_h, stride_w, dilation_h, dilation_w, filter_height, filter_width) < 1:
        raise ctx.fail("strides, dilations and the filter size must be positive")
    batches, in_h, in_w, in_d = source.shape
    out_b, out_h, out_w, out_d = result.shape
    expected = (output_size(ctx.op.padding, in_h, filter_height, stride_h, dilation_h),
                output_size(ctx.op.padding, in_w, filter_width, stride_w, dilation_w))
    if out_b != batches or (out_h, out_w) != expected:
        raise ctx.fail(f"output shape {list(result.shape)} does not follow from {ctx.op.padding} padding "
                       f"(expected height x width {expected[0]} x {expected[1]})")
    ctx.streams_over = source.index, window_overlap_limit(
        source, result, filter_height, filter_width, stride_h, stride_w, dilation_h, dilation_w,
        leading_padding(in_h, filter_height, stride_h, dilation_h, out_h),
        leading_padding(in_w, filter_width, stride_w, dilation_w, out_w))
    return c_struct([
        ("batches", batches), ("input_height", in_h), ("input_width", in_w), ("input_depth", in_d),
        ("output_height", out_h), ("output_width", out_w), ("output_depth", out_d),
        ("filter_height", filter_height), ("filter_width", filter_width),
        ("stride_height", stride_h), ("stride_width", stride_w),
        ("dilation_height", dilation_h), ("dilation_width", dilation_w),
        ("pad_top", leading_padding(in_h, filter_height, stride_h, dilation_h, out_h)),
        ("pad_left", leading_padding(in_w, filter_width, stride_w, dilation_w, out_w)),
    ])


def conv_requant(ctx: LoweringContext, source: Tensor, weights: Tensor, result: Tensor, channels: int,
                 channel_axis: int) -> str:
    """The td_requant initializer of a convolution: multipliers/shifts in flash, zero points, fused clamp."""
    quant = weights.quant
    if quant is None or len(quant.scales) not in (1, channels):
        raise ctx.fail("weights are not quantized per tensor or per output channel")
    per_channel = len(quant.scales) > 1
    if per_channel and quant.axis != channel_axis:
        raise ctx.fail(f"per-channel weights are quantized along axis {quant.axis}, expected {channel_axis}")
    if any(quant.zero_points):
        raise ctx.fail("weights must be symmetric (zero point 0)")
    input_scale, output_scale = ctx.scale(source), ctx.scale(result)
    pairs = [quantize_multiplier(float(input_scale) * float(s) / float(output_scale)) for s in quant.scales]
    low, high = activation_range(ctx.op.activation, output_scale, ctx.zero_point(result))
    index = ctx.op.index
    multipliers = ctx.constants.array(f"op{index}_multipliers", "int32_t", [m for m, _ in pairs],
                                      f"op {index}: Q31 output multipliers")
    shifts = ctx.constants.array(f"op{index}_shifts", "int32_t", [s for _, s in pairs],
                                 f"op {index}: output shifts (power-of-two exponents)")
    return c_struct([("input_offset", -ctx.zero_point(source)), ("output_offset", ctx.zero_point(result)),
                     ("activation_min", low), ("activation_max", high), ("per_channel", per_channel),
                     ("multipliers", multipliers), ("shifts", shifts)])


def window_overlap_limit(source: Tensor, result: Tensor, filter_height: int, filter_width: int, stride_h: int,
                         stride_w: int, dilation_h: int, dilation_w: int, pad_top: int, pad_left: int) -> int:
    """How many bytes after the start of its input a sliding-window kernel may start writing its output.

    The reference kernels write output elements in increasing address order, each after its own reads. An
    element may therefore overwrite input bytes that no later element reads: the limit is the smallest
    distance, over all elements, between the lowest input byte still to be read and the element's own byte,
    minus one (negative: the output must start that far before the input)."""
    import numpy as np

    batches, in_h, in_w, in_d = (int(d) for d in source.shape)
    _, out_h, out_w, out_d = (int(d) for d in result.shape)

    def first_valid(out_size: int, stride: int, pad: int, dilation: int, filter_size: int, in_size: int):
        start = np.arange(out_size) * stride - pad
        steps = np.maximum(0, -(start // dilation))  # ceil(-start / dilation) where start < 0
        first = start + steps * dilation
        valid = (steps < filter_size) & (first < in_size)
        return first, valid

    rows, rows_ok = first_valid(out_h, stride_h, pad_top, dilation_h, filter_height, in_h)
    cols, cols_ok = first_valid(out_w, stride_w, pad_left, dilation_w, filter_width, in_w)
    batch = np.arange(batches)[:, None, None]
    lowest = ((batch * in_h + rows[None, :, None]) * in_w + cols[None, None, :]) * in_d
    lowest = np.where(rows_ok[None, :, None] & cols_ok[None, None, :], lowest, np.iinfo(np.int64).max)
    lowest = lowest.reshape(-1).astype(np.int64)  # per output pixel, in write order
    suffix = np.minimum.accumulate(lowest[::-1])[::-1]  # lowest read by this pixel or any later one
    after = np.append(suffix[1:], np.iinfo(np.int64).max)  # ... by any later pixel
    first_byte = np.arange(lowest.size, dtype=np.int64) * out_d
    # The pixel's channels but the last still precede reads of this same pixel; the last precedes only later ones.
    limits = after - (first_byte + out_d - 1)
    if out_d > 1:
        limits = np.minimum(limits, suffix - (first_byte + out_d - 2))
    return int(min(limits.min(), 1 << 30)) - 1 if limits.size else 0
