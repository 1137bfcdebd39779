"""DEPTHWISE_CONV_2D: int8 NHWC input, symmetric int8 weights [1, h, w, in * multiplier], int32 bias.

With fast kernels the layer runs depthwise_conv_2d_fast.c (Cortex-M4 DSP, four channels per word) whenever this
module can prove that kernel's shorter arithmetic exact for the layer's weights, biases and scales; otherwise the
reference kernel. The weights are widened, scaled and reordered here; the requantization constants are folded."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinydeploy.engine.ops.common import conv_requant, window
from tinydeploy.engine.ops.weighted_s16 import lower_depthwise_conv_2d_s16
from tinydeploy.engine.quant import activation_range, quantize_multiplier
from tinydeploy.engine.registry import LoweringContext, lowering, same
from tinydeploy.model.tflite import Tensor

INT32_MAX = (1 << 31) - 1
INT16_MAX = (1 << 15) - 1
VECTOR = 4  # channels per word in depthwise_conv_2d_fast.c


@lowering("DEPTHWISE_CONV_2D", kernel="depthwise_conv_2d", dtypes=same("int8", "int16"))
def lower_depthwise_conv_2d(ctx: LoweringContext):
    if ctx.signature[0] == "int16":
        return lower_depthwise_conv_2d_s16(ctx)
    source = ctx.input(0, constant=False)
    weights = ctx.input(1, constant=True)
    bias = ctx.optional_input(2, ("int32",), constant=True)
    result = ctx.output(0)
    if len(weights.shape) != 4 or weights.shape[0] != 1 or len(source.shape) != 4:
        raise ctx.fail(f"weights have shape {list(weights.shape)}, expected [1, height, width, channels]")
    _, filter_h, filter_w, out_depth = weights.shape
    in_depth = source.shape[3]
    if in_depth == 0 or out_depth % in_depth or result.shape[-1] != out_depth:
        raise ctx.fail(f"{out_depth} output channels are not a multiple of {in_depth} input channels")
    if bias is not None and bias.elements != out_depth:
        raise ctx.fail("bias and output channels disagree")
    geometry = window(ctx, source, result, filter_h, filter_w)
    index = ctx.op.index
    fast = fast_constants(ctx, source, weights, bias, result) if ctx.fast_kernels else None
    if fast is not None:
        words, scaled_bias, folded, vector_channels = fast
        low, high = activation_range(ctx.op.activation, ctx.scale(result), ctx.zero_point(result))
        params = ctx.constants.struct(f"op{index}_params", "td_depthwise_conv_2d_fast_params", [
            ("window", geometry), ("depth_multiplier", out_depth // in_depth),
            ("input_offset", -ctx.zero_point(source)), ("activation_min", low), ("activation_max", high),
            ("vector_channels", vector_channels),
        ], f"op {index}: DEPTHWISE_CONV_2D {ctx.op.padding} {ctx.op.activation}, fast")
        args = (params, ctx.ref(source),
                ctx.constants.array(f"op{index}_dw_weights", "int32_t", words,
                                    f"op {index}: weights of tensor {weights.index} widened and scaled"),
                ctx.constants.array(f"op{index}_dw_bias", "int32_t", scaled_bias, f"op {index}: bias, scaled"),
                ctx.constants.array(f"op{index}_dw_requant", "int32_t", folded,
                                    f"op {index}: per channel multiplier, round, shift"),
                ctx.constants.array(f"op{index}_dw_padding", "int8_t", [ctx.zero_point(source)] * in_depth,
                                    f"op {index}: the input zero point, read for taps in the padding"),
                ctx.ref(result))
        return ctx.lowered("td_depthwise_conv_2d_fast_s8", args, kernel="depthwise_conv_2d_fast",
                           variant=fast_variant(filter_h, filter_w, out_depth, vector_channels, out_depth // in_depth))
    params = ctx.constants.struct(f"op{index}_params", "td_depthwise_conv_2d_params", [
        ("window", geometry), ("depth_multiplier", out_depth // in_depth),
        ("requant", conv_requant(ctx, source, weights, result, out_depth, 3)),
    ], f"op {index}: DEPTHWISE_CONV_2D {ctx.op.padding} {ctx.op.activation}")
    bias_arg = ctx.constants.tensor(bias, "int32_t") if bias is not None else "NULL"
    variant = "reference" if not ctx.fast_kernels else "reference (sums too wide for the fast kernel)"
    return ctx.lowered("td_depthwise_conv_2d_s8", (params, ctx.ref(source), ctx.constants.tensor(weights, "int8_t"),
                                                   bias_arg, ctx.ref(result)), variant=variant)


def fast_variant(filter_h: int, filter_w: int, channels: int, vector_channels: int, multiplier: int) -> str:
    shape = f"{filter_h}x{filter_w}"
    if multiplier != 1:
        return f"dsp {shape} one channel at a time (depth multiplier {multiplier})"
    if vector_channels == channels:
        return f"dsp {shape} 4 channels per word"
    return f"dsp {shape} 4 channels per word, last {channels - vector_channels} one at a time"


@dataclass(frozen=True)
class ChannelScale:
    multiplier: int  # Q31
    left: int  # left shift before the multiply
    right: int  # rounding right shift after it


def fast_constants(ctx: LoweringContext, source: Tensor, weights: Tensor, bias: Tensor | None,
                   result: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """(weight words, scaled bias, requant triples, vector channels) for depthwise_conv_2d_fast.c, or None when
    its arithmetic is not provably equal to the reference's for this layer, or the quantization is one the reference
    lowering refuses (it then names the problem).

    The fast kernel scales each channel's weights and bias by 2^(left + 1) so that SMMULR of the accumulator is the
    reference's doubling high multiply, and computes the rounding shift and output offset as one add and one
    arithmetic shift. Both are exact while no 32-bit sum overflows, which is checked here from the actual values."""
    _, filter_h, filter_w, channels = (int(d) for d in weights.shape)
    if channels == 0:
        return None
    taps = filter_h * filter_w
    quant = weights.quant
    if quant is None or len(quant.scales) not in (1, channels) or any(quant.zero_points) or \
            (len(quant.scales) > 1 and quant.axis != 3):
        return None
    scales = list(quant.scales)
    if len(scales) == 1:
        scales *= channels
    input_scale, output_scale = ctx.scale(source), ctx.scale(result)
    per_channel = []
    for scale in scales:
        multiplier, shift = quantize_multiplier(float(input_scale) * float(scale) / float(output_scale))
        per_channel.append(ChannelScale(multiplier, max(shift, 0), max(-shift, 0)))
    input_offset, output_offset = -ctx.zero_point(source), ctx.zero_point(result)
    values = weights.values().astype(np.int64).reshape(taps, channels)
    biases = bias.values().astype(np.int64).reshape(channels) if bias is not None else np.zeros(channels, np.int64)
    widest_input = max(abs(-128 + input_offset), abs(127 + input_offset))  # |x + input_offset|
    factors = np.array([1 << (c.left + 1) for c in per_channel], dtype=np.int64)
    folded = []
    for channel, c in enumerate(per_channel):
        weight_sum = int(np.abs(values[:, channel]).sum())
        widest_sum = abs(int(biases[channel])) + widest_input * weight_sum  # bounds every partial sum
        factor = int(factors[channel])
        round_term = (1 << c.right) + output_offset * (1 << (c.right + 1))
        widest_high = (widest_sum * factor * c.multiplier + (1 << 31)) // (1 << 32) + 1
        if (c.right + 1 > 31 or int(np.abs(values[:, channel]).max(initial=0)) * factor > INT16_MAX
                or widest_sum * factor > INT32_MAX or 2 * widest_high + 1 + abs(round_term) > INT32_MAX):
            return None
        folded.append((c.multiplier, round_term, c.right + 1))
    multiplier = channels // int(source.shape[3])
    vector_channels = channels // VECTOR * VECTOR if multiplier == 1 else 0
    scaled = values * factors[None, :]
    blocks = scaled[:, :vector_channels].reshape(taps, -1, VECTOR).transpose(1, 0, 2) & 0xFFFF  # [block, tap, 4]
    pairs = np.stack([blocks[..., 0] | (blocks[..., 2] << 16), blocks[..., 1] | (blocks[..., 3] << 16)], axis=-1)
    words = np.concatenate([_as_int32(pairs.reshape(-1)), scaled[:, vector_channels:].T.reshape(-1)])
    return (words.astype(np.int32), (biases * factors).astype(np.int32), np.array(folded, dtype=np.int64)
            .reshape(-1).astype(np.int32), vector_channels)


def _as_int32(words: np.ndarray) -> np.ndarray:
    """Unsigned 32-bit patterns as the int32 values with the same bits."""
    return (words.astype(np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)
