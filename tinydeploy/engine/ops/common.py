"""Helpers shared by lowerings: window geometry (padding as TFLite computes it) and requantization constants."""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass

from tinydeploy.engine.quant import INT32_MAX, activation_range, quantize_multiplier
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
    ctx.streams_over = source.index, source.itemsize * window_overlap_limit(  # elements -> bytes (int16: 2)
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


def symmetric(ctx: LoweringContext, *tensors: Tensor) -> None:
    """int16 tensors must be symmetric (zero point 0), as TFLite's int16 kernels assume."""
    for tensor in tensors:
        if ctx.zero_point(tensor) != 0:
            raise ctx.fail(f"int16 tensor {tensor.name} has zero point {ctx.zero_point(tensor)}; TFLite's int16 "
                           "scheme needs 0")


def unary_tensors(ctx: LoweringContext, dtypes: tuple[str, ...] = ("int8",)) -> tuple[Tensor, Tensor]:
    """The input and output of a one-input elementwise op, checked to hold as many values."""
    source = ctx.input(0, dtypes, constant=False)
    result = ctx.output(0, dtypes)
    if source.elements != result.elements:
        raise ctx.fail(f"shapes {list(source.shape)} -> {list(result.shape)} differ")
    return source, result


def bias_input(ctx: LoweringContext, channels: int, dtypes: tuple[str, ...] = ("int32",)) -> Tensor | None:
    """A weighted op's constant bias (input 2), if any, checked to hold one value per output channel."""
    bias = ctx.optional_input(2, dtypes, constant=True)
    if bias is not None and bias.elements != channels:
        raise ctx.fail(f"bias has {bias.elements} values, expected {channels}")
    return bias


def conv_2d_shape(ctx: LoweringContext, source: Tensor, weights: Tensor, result: Tensor) -> tuple[int, int, int, int]:
    """(output channels, filter height, filter width, input channels) of CONV_2D weights [out, h, w, in]."""
    if len(weights.shape) != 4:
        raise ctx.fail(f"weights have shape {list(weights.shape)}, expected [out, height, width, in]")
    out_depth, filter_h, filter_w, filter_in = weights.shape
    if len(source.shape) == 4 and source.shape[3] != filter_in:
        raise ctx.fail("grouped convolutions are not supported")
    if result.shape[-1] != out_depth:
        raise ctx.fail("output channels and weights disagree")
    return out_depth, filter_h, filter_w, filter_in


def depthwise_conv_2d_shape(ctx: LoweringContext, source: Tensor, weights: Tensor,
                            result: Tensor) -> tuple[int, int, int, int]:
    """(filter height, filter width, output channels, input channels) of DEPTHWISE_CONV_2D weights
    [1, h, w, in * multiplier]."""
    if len(weights.shape) != 4 or weights.shape[0] != 1 or len(source.shape) != 4:
        raise ctx.fail(f"weights have shape {list(weights.shape)}, expected [1, height, width, channels]")
    _, filter_h, filter_w, out_depth = weights.shape
    in_depth = source.shape[3]
    if in_depth == 0 or out_depth % in_depth or result.shape[-1] != out_depth:
        raise ctx.fail(f"{out_depth} output channels are not a multiple of {in_depth} input channels")
    return filter_h, filter_w, out_depth, in_depth


def fully_connected_shape(ctx: LoweringContext, source: Tensor, weights: Tensor,
                          result: Tensor) -> tuple[int, int, int]:
    """(batches, input depth, output depth) of FULLY_CONNECTED weights [outputs, inputs] in the default format."""
    if ctx.op.options.get("weightsFormat", 0) != 0:
        raise ctx.fail("shuffled weight formats are not supported")
    if len(weights.shape) != 2:
        raise ctx.fail(f"weights have shape {list(weights.shape)}, expected [outputs, inputs]")
    output_depth, input_depth = weights.shape
    if input_depth == 0 or source.elements % input_depth:
        raise ctx.fail(f"input of {source.elements} values is not a whole number of rows of {input_depth}")
    batches = source.elements // input_depth
    if result.elements != batches * output_depth:
        raise ctx.fail(f"output has {result.elements} values, expected {batches} x {output_depth}")
    return batches, input_depth, output_depth


def fully_connected_multipliers(input_scale: float, weight_scales, output_scale: float) -> list[tuple[int, int]]:
    """FULLY_CONNECTED's rescale input * weight / output in double precision, per channel or per tensor. (TFLM's
    source rounds the per-tensor product to single precision first; the tflite_micro runtime's outputs match the
    double product, measured on an int16x8 layer whose two multipliers round apart.)"""
    return [quantize_multiplier(float(input_scale) * float(s) / float(output_scale)) for s in weight_scales]


def _requant_arrays(ctx: LoweringContext, source: Tensor, weights: Tensor, result: Tensor, channels: int,
                    channel_axis: int) -> tuple[str, str, bool]:
    """Multipliers and shifts (flash arrays) of a convolution's output channels, and whether they are per channel."""
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
    index = ctx.op.index
    multipliers = ctx.constants.array(f"op{index}_multipliers", "int32_t", [m for m, _ in pairs],
                                      f"op {index}: Q31 output multipliers")
    shifts = ctx.constants.array(f"op{index}_shifts", "int32_t", [s for _, s in pairs],
                                 f"op {index}: output shifts (power-of-two exponents)")
    return multipliers, shifts, per_channel


def conv_requant(ctx: LoweringContext, source: Tensor, weights: Tensor, result: Tensor, channels: int,
                 channel_axis: int) -> str:
    """The td_requant initializer of a convolution: multipliers/shifts in flash, zero points, fused clamp."""
    multipliers, shifts, per_channel = _requant_arrays(ctx, source, weights, result, channels, channel_axis)
    low, high = activation_range(ctx.op.activation, ctx.scale(result), ctx.zero_point(result))
    return c_struct([("input_offset", -ctx.zero_point(source)), ("output_offset", ctx.zero_point(result)),
                     ("activation_min", low), ("activation_max", high), ("per_channel", per_channel),
                     ("multipliers", multipliers), ("shifts", shifts)])


MAT_CONSTANT = 0x10000  # TD_MAT_CONSTANT in td_dot.h
BLOCK = 4  # output channels per block of the channels4 layout and of the fast depthwise kernel


def requantize(acc: int, multiplier: int, shift: int) -> int:
    """td_multiply_by_quantized_multiplier on Python integers (the reference kernels' arithmetic, int32 wrapping
    of the left shift included)."""
    left, right = max(shift, 0), max(-shift, 0)
    scaled = _wrap32(acc << left)
    product = scaled * multiplier
    nudge = (1 << 30) if product >= 0 else 1 - (1 << 30)
    high = abs(product + nudge) // (1 << 31) * (1 if product + nudge >= 0 else -1)  # divided toward zero
    if scaled == multiplier == -(1 << 31):
        high = INT32_MAX
    mask = (1 << right) - 1
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if (high & mask) > threshold else 0)


def _wrap32(value: int) -> int:
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


@dataclass(frozen=True)
class ChannelRequant:
    """One output channel's requantization as td_dot.h records hold it."""

    bias: int  # int32 (wrapped)
    multiplier: int  # Q31
    up: int  # left shift + 1
    right: int  # right shift

    @property
    def shift(self) -> int:
        return self.up - 1 - self.right

    def shifts_word(self, constant: bool = False) -> int:
        return self.up | (self.right << 8) | (MAT_CONSTANT if constant else 0)

    def round(self, output_offset: int) -> int:
        """(1 + 2 zp) * 2^(r - 1), wrapped to int32 (used only when the layer is folded, which bounds it)."""
        return _wrap32(((1 + 2 * output_offset) << self.right) >> 1)


def channel_requants(ctx: LoweringContext, source: Tensor, weights: Tensor, result: Tensor, channels: int,
                     channel_axis: int, biases: np.ndarray) -> list[ChannelRequant]:
    """Per output channel multiplier and shifts (TFLite multiplies the scales in double precision), refusing the
    quantizations the reference lowering refuses."""
    quant = weights.quant
    if quant is None or len(quant.scales) not in (1, channels):
        raise ctx.fail("weights are not quantized per tensor or per output channel")
    if len(quant.scales) > 1 and quant.axis != channel_axis:
        raise ctx.fail(f"per-channel weights are quantized along axis {quant.axis}, expected {channel_axis}")
    if any(quant.zero_points):
        raise ctx.fail("weights must be symmetric (zero point 0)")
    input_scale, output_scale = ctx.scale(source), ctx.scale(result)
    pairs = [quantize_multiplier(float(input_scale) * float(s) / float(output_scale)) for s in quant.scales]
    pairs = pairs * channels if len(pairs) == 1 else pairs
    return [ChannelRequant(_wrap32(int(b)), m, max(s, 0) + 1, max(-s, 0)) for b, (m, s) in zip(biases, pairs)]


def folding_proven(requants: list[ChannelRequant], weight_abs_sums: np.ndarray, input_offset: int,
                   output_offset: int, clamp: tuple[int, int], skip: np.ndarray | None = None) -> bool:
    """Whether td_dot.h's folded requantization is the reference's for every possible input of this layer: the
    clamp is [-128, 127], every right shift is at least 1 and no shifted sum nor rounded high word overflows
    int32 (bounded from the actual weights and biases). `skip`: channels that never requantize (constants)."""
    if clamp != (-128, 127):
        return False
    widest_input = max(abs(-128 + input_offset), abs(127 + input_offset))  # |x + input_offset|
    for channel, c in enumerate(requants):
        if skip is not None and skip[channel]:
            continue
        widest_sum = abs(c.bias) + widest_input * int(weight_abs_sums[channel])  # bounds the final sum
        if not 1 <= c.right <= 30 or c.up > 31 or widest_sum * (1 << c.up) > INT32_MAX:
            return False
        widest_high = (widest_sum * (1 << c.up) * c.multiplier + (1 << 31)) // (1 << 32) + 1
        if widest_high + abs(((1 + 2 * output_offset) << c.right) >> 1) + 1 > INT32_MAX:
            return False
    return True


def mat_quant(ctx: LoweringContext, source: Tensor, result: Tensor, folded: bool) -> str:
    """The td_mat_quant initializer (td_dot.h)."""
    low, high = activation_range(ctx.op.activation, ctx.scale(result), ctx.zero_point(result))
    return c_struct([("input_offset", -ctx.zero_point(source)), ("output_offset", ctx.zero_point(result)),
                     ("activation_min", low), ("activation_max", high), ("folded", int(folded))])


@dataclass
class MatLayer:
    """A convolution or dense layer in td_dot.h's form: int8 weights laid out for one of its layouts, records,
    and whether the folded requantization is proven."""

    weights: np.ndarray  # int8 bytes in flash order
    records: np.ndarray  # int32 words
    folded: bool
    groups: int
    constant_channels: int  # pixels4: channels with all-zero weights, written from their records


def mat_layer(ctx: LoweringContext, source: Tensor, weights: Tensor, bias: Tensor | None, result: Tensor,
              matrix: np.ndarray, layout: str) -> MatLayer:
    """`matrix`: the weights as [output channels, inputs] in the order the kernel widens the inputs."""
    channels, inputs = matrix.shape
    groups = (inputs + 3) // 4
    padded = np.zeros((channels, groups * 4), dtype=np.int64)
    padded[:, :inputs] = matrix
    biases = bias.values().reshape(-1).astype(np.int64) if bias is not None else np.zeros(channels, np.int64)
    requants = channel_requants(ctx, source, weights, result, channels, 0, biases)
    low, high = activation_range(ctx.op.activation, ctx.scale(result), ctx.zero_point(result))
    input_offset, output_offset = -ctx.zero_point(source), ctx.zero_point(result)
    abs_sums = np.abs(padded).sum(axis=1)
    constant = (abs_sums == 0) if layout == "pixels4" else np.zeros(channels, dtype=bool)
    folded = folding_proven(requants, abs_sums, input_offset, output_offset, (low, high), constant)
    if layout == "pixels4":
        records = []
        for channel, c in enumerate(requants):
            if constant[channel]:
                value = min(max(requantize(c.bias, c.multiplier, c.shift) + output_offset, low), high)
                records += [value, c.shifts_word(constant=True), 0]
            else:
                records += [c.bias, c.shifts_word(), c.multiplier]
        flash = padded[~constant].reshape(-1)
    else:
        blocked = channels // BLOCK * BLOCK
        records = []
        for block in range(0, blocked, BLOCK):
            records += [c.bias for c in requants[block:block + BLOCK]]
            for c in requants[block:block + BLOCK]:
                records += [c.shifts_word(), c.multiplier, c.round(output_offset)]
        for c in requants[blocked:]:
            records += [c.bias, c.shifts_word(), c.multiplier, c.round(output_offset)]
        head = padded[:blocked].reshape(-1, BLOCK, groups, 4).transpose(0, 2, 1, 3).reshape(-1)
        flash = np.concatenate([head, padded[blocked:].reshape(-1)])
    return MatLayer(flash.astype(np.int8), np.array(records, dtype=np.int64), folded, groups, int(constant.sum()))


def window_overlap_limit(source: Tensor, result: Tensor, filter_height: int, filter_width: int, stride_h: int,
                         stride_w: int, dilation_h: int, dilation_w: int, pad_top: int, pad_left: int) -> int:
    """How many bytes after the start of its input a sliding-window kernel may start writing its output.

    The reference kernels write output elements in increasing address order, each after its own reads. An
    element may therefore overwrite input bytes that no later element reads: the limit is the smallest
    distance, over all elements, between the lowest input byte still to be read and the element's own byte,
    minus one (negative: the output must start that far before the input)."""
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
