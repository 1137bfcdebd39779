"""Helpers shared by lowerings: window geometry (padding as TFLite computes it) and requantization constants."""

from __future__ import annotations

import numpy as np

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


def fast_requant(ctx: LoweringContext, source: Tensor, weights: Tensor, bias: Tensor | None, result: Tensor,
                 channels: int, channel_axis: int) -> str:
    """The td_fast_requant initializer (td_dot.h): zero points, clamp and one td_fast_channel record per output
    channel (bias, multiplier, left shift, right shift) in flash."""
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
    biases = bias.values().reshape(-1).astype(np.int64) if bias is not None else np.zeros(channels, np.int64)
    records = np.array([(int(b), m, max(s, 0), max(-s, 0)) for b, (m, s) in zip(biases, pairs)], dtype=np.int64)
    index = ctx.op.index
    table = ctx.constants.array(f"op{index}_channels", "int32_t", records.reshape(-1),
                                f"op {index}: per output channel bias, Q31 multiplier, left shift, right shift")
    low, high = activation_range(ctx.op.activation, output_scale, ctx.zero_point(result))
    folded = folded_requant(weights.values().astype(np.int64), channel_axis, biases, pairs, -ctx.zero_point(source),
                            ctx.zero_point(result), (low, high))
    folded_ref = "NULL" if folded is None else ctx.constants.array(
        f"op{index}_folded", "int32_t", folded,
        f"op {index}: per block of {DOT_BLOCK} channels biases, then up, multiplier, round, shift per channel")
    return c_struct([("input_offset", -ctx.zero_point(source)), ("output_offset", ctx.zero_point(result)),
                     ("activation_min", low), ("activation_max", high),
                     ("channels", f"(const td_fast_channel *){table}"), ("folded", folded_ref)])


INT32_MAX = (1 << 31) - 1
FOLDED_LAST = 0x100  # TD_FOLDED_LAST in td_dot.h


def folded_requant(weights: np.ndarray, channel_axis: int, biases: np.ndarray, pairs: list[tuple[int, int]],
                   input_offset: int, output_offset: int, clamp: tuple[int, int]) -> np.ndarray | None:
    """td_fast_requant.folded (td_dot.h) for the blocks of four channels, or None when its shorter arithmetic is
    not provably the reference's for these values: the clamp must be [-128, 127] and no 32-bit sum may overflow
    (bounded from the actual weights and biases, for every possible input)."""
    channels = weights.shape[channel_axis]
    blocked = channels // DOT_BLOCK * DOT_BLOCK
    if clamp != (-128, 127) or blocked == 0:
        return None
    weight_sums = np.abs(np.moveaxis(weights, channel_axis, 0).reshape(channels, -1)).sum(axis=1)
    widest_input = max(abs(-128 + input_offset), abs(127 + input_offset))  # |x + input_offset|
    records = []
    for channel in range(blocked):
        multiplier, shift = pairs[channel]
        left, right = max(shift, 0), max(-shift, 0)
        widest_sum = abs(int(biases[channel])) + widest_input * int(weight_sums[channel])  # bounds every partial sum
        round_term = (1 << right) + output_offset * (1 << (right + 1))
        widest_high = (widest_sum * (1 << (left + 1)) * multiplier + (1 << 31)) // (1 << 32) + 1
        if (right + 1 > 31 or widest_sum * (1 << (left + 1)) > INT32_MAX
                or 2 * widest_high + 1 + abs(round_term) > INT32_MAX):
            return None
        records.append((left + 1, multiplier, round_term, right + 1))
    records[-1] = records[-1][:3] + (records[-1][3] | FOLDED_LAST,)  # ends td_dot_blocks_folded's loop
    words = []
    for block in range(0, blocked, DOT_BLOCK):
        words += [int(b) for b in biases[block:block + DOT_BLOCK]]
        for record in records[block:block + DOT_BLOCK]:
            words += record
    return np.array(words, dtype=np.int64)


DOT_BLOCK = 4  # output channels per pass of td_dot.h


def widened_weights(weights: np.ndarray) -> np.ndarray:
    """int8 weights [channels, inputs] as the uint32 words td_dot.h reads: inputs padded to groups of four,
    each group as the int16 pairs (w0, w2), (w1, w3); channels in blocks of four (the words of one group
    together), the remaining channels one by one."""
    weights = np.asarray(weights, dtype=np.int64)
    channels, inputs = weights.shape
    groups = (inputs + 3) // 4
    padded = np.zeros((channels, groups * 4), dtype=np.int64)
    padded[:, :inputs] = weights
    quads = padded.reshape(channels, groups, 4) & 0xFFFF
    words = np.stack([quads[..., 0] | (quads[..., 2] << 16), quads[..., 1] | (quads[..., 3] << 16)], axis=-1)
    blocked = channels // DOT_BLOCK * DOT_BLOCK
    head = words[:blocked].reshape(-1, DOT_BLOCK, groups, 2).transpose(0, 2, 1, 3).reshape(-1)
    return np.concatenate([head, words[blocked:].reshape(-1)]).astype(np.uint32)


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
