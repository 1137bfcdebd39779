"""DEPTHWISE_CONV_2D: int8 NHWC input, symmetric int8 weights [1, h, w, in * multiplier], int32 bias.

With fast kernels the layer runs depthwise_conv_2d_fast.c (Cortex-M4 DSP, four channels per word). Its weights stay
int8, reordered here per block of four channels; the input offset times each channel's weight sum goes into the
bias (taps in the padding read a row of input zero points, so every tap adds exactly what the reference adds)."""

from __future__ import annotations

import numpy as np

from tinydeploy.engine.ops.common import (BLOCK, bias_input, channel_requants, conv_requant,
                                          depthwise_conv_2d_shape, folding_proven, mat_quant, window)
from tinydeploy.engine.ops.weighted_s16 import lower_depthwise_conv_2d_s16
from tinydeploy.engine.quant import INT16_MAX, activation_range
from tinydeploy.engine.registry import LoweringContext, ScratchRef, lowering, same
from tinydeploy.model.tflite import Tensor

MAX_TAPS = 64  # TD_DW_FAST_MAX_TAPS
SCRATCH_BLOCK_BYTES = 88  # 4 * TD_DW_SCRATCH_BLOCK_WORDS: a block's prescaled weights and biases


@lowering("DEPTHWISE_CONV_2D", kernel="depthwise_conv_2d", dtypes=same("int8", "int16"))
def lower_depthwise_conv_2d(ctx: LoweringContext):
    if ctx.signature[0] == "int16":
        return lower_depthwise_conv_2d_s16(ctx)
    source = ctx.input(0, constant=False)
    weights = ctx.input(1, constant=True)
    result = ctx.output(0)
    filter_h, filter_w, out_depth, in_depth = depthwise_conv_2d_shape(ctx, source, weights, result)
    bias = bias_input(ctx, out_depth)
    geometry = window(ctx, source, result, filter_h, filter_w)
    index = ctx.op.index
    if ctx.fast_kernels and 0 < filter_h * filter_w <= MAX_TAPS and out_depth > 0:
        multiplier = out_depth // in_depth
        words, records, folded, blocks = fast_constants(ctx, source, weights, bias, result, multiplier)
        # Widened, scaled weights in scratch: where the scaled weights fit int16 and there is room.
        scratch = SCRATCH_BLOCK_BYTES * blocks
        prescaled = folded and filter_h == filter_w == 3 and blocks > 0 and scratch <= ctx.scratch_limit
        if prescaled:
            up = records[:blocks * 16].reshape(blocks, 16)[:, 4::3] & 0xFF
            widest = np.abs(words[:blocks * 36].astype(np.int64).reshape(blocks, 9, 4)).max(axis=1)
            prescaled = bool((widest * (1 << up) <= INT16_MAX).all())
        zero_point = ctx.zero_point(source)
        # stored once for every op with this zero point and depth (Constants keeps equal arrays once)
        padding = ctx.constants.array(f"op{index}_padding", "int8_t", [zero_point] * ((in_depth + 3) // 4 * 4),
                                      "input zero points, read for taps in the padding")
        params = ctx.constants.struct(f"op{index}_params", "td_depthwise_conv_2d_fast_params", [
            ("window", geometry), ("depth_multiplier", multiplier),
            ("quant", mat_quant(ctx, source, result, folded)), ("blocks", blocks),
            ("weights", ctx.constants.array(f"op{index}_weights", "int8_t", words,
                                            f"op {index}: weights of tensor {weights.index}, blocks of four")),
            ("records", ctx.constants.array(f"op{index}_records", "int32_t", records,
                                            f"op {index}: biases (input offset folded in), shifts, multipliers, "
                                            "rounds")),
            ("padding", padding), ("scratch_bytes", scratch if prescaled else 0),
        ], f"op {index}: DEPTHWISE_CONV_2D {ctx.op.padding} {ctx.op.activation}, fast")
        variant = fast_variant(filter_h, filter_w, out_depth, blocks * BLOCK, multiplier, folded)
        return ctx.lowered("td_depthwise_conv_2d_fast_s8",
                           (params, ctx.ref(source), ScratchRef(optional=True), ctx.ref(result)),
                           kernel="depthwise_conv_2d_fast",
                           variant=variant + (", weights widened per call" if prescaled else ""),
                           scratch_request=scratch if prescaled else 0)
    params = ctx.constants.struct(f"op{index}_params", "td_depthwise_conv_2d_params", [
        ("window", geometry), ("depth_multiplier", out_depth // in_depth),
        ("requant", conv_requant(ctx, source, weights, result, out_depth, 3)),
    ], f"op {index}: DEPTHWISE_CONV_2D {ctx.op.padding} {ctx.op.activation}")
    bias_arg = ctx.constants.tensor(bias, "int32_t") if bias is not None else "NULL"
    variant = "reference" if not ctx.fast_kernels else "reference (window too large for the fast kernel)"
    return ctx.lowered("td_depthwise_conv_2d_s8", (params, ctx.ref(source), ctx.constants.tensor(weights, "int8_t"),
                                                   bias_arg, ctx.ref(result)), variant=variant)


def fast_variant(filter_h: int, filter_w: int, channels: int, vector_channels: int, multiplier: int,
                 folded: bool = True) -> str:
    shape = f"{filter_h}x{filter_w}"
    exact = "" if folded else ", exact requantization in C"
    if multiplier != 1:
        return f"dsp {shape} one channel at a time (depth multiplier {multiplier}){exact}"
    if vector_channels == channels:
        return f"dsp {shape} 4 channels per word{exact}"
    return f"dsp {shape} 4 channels per word, last {channels - vector_channels} one at a time{exact}"


def fast_constants(ctx: LoweringContext, source: Tensor, weights: Tensor, bias: Tensor | None, result: Tensor,
                   multiplier: int) -> tuple[np.ndarray, np.ndarray, bool, int]:
    """(int8 weights, int32 records, folded, blocks) for depthwise_conv_2d_fast.c (layouts in its header)."""
    _, filter_h, filter_w, channels = (int(d) for d in weights.shape)
    taps = filter_h * filter_w
    values = weights.values().astype(np.int64).reshape(taps, channels)
    biases = bias.values().astype(np.int64).reshape(channels) if bias is not None else np.zeros(channels, np.int64)
    input_offset, output_offset = -ctx.zero_point(source), ctx.zero_point(result)
    requants = channel_requants(ctx, source, weights, result, channels, 3, biases)
    low, high = activation_range(ctx.op.activation, ctx.scale(result), ctx.zero_point(result))
    folded = folding_proven(requants, np.abs(values).sum(axis=0), input_offset, output_offset, (low, high))
    # The kernel multiplies raw inputs: the reference's sum of w * (x + input_offset) is the kernel's sum of w * x
    # plus input_offset * sum(w), which goes into the bias (int32 wrapping keeps it exact).
    shifted = [((c.bias + input_offset * int(values[:, channel].sum()) + (1 << 31)) % (1 << 32)) - (1 << 31)
               for channel, c in enumerate(requants)]
    blocks = channels // BLOCK if multiplier == 1 else 0
    records: list[int] = []
    for block in range(blocks):
        lanes = range(block * BLOCK, (block + 1) * BLOCK)
        records += [shifted[c] for c in lanes]
        for c in lanes:
            records += [requants[c].shifts_word(), requants[c].multiplier, requants[c].round(output_offset)]
    for c in range(blocks * BLOCK, channels):
        records += [shifted[c], requants[c].shifts_word(), requants[c].multiplier, requants[c].round(output_offset)]
    head = values[:, :blocks * BLOCK].reshape(taps, blocks, BLOCK).transpose(1, 0, 2).reshape(-1)
    words = np.concatenate([head, values[:, blocks * BLOCK:].T.reshape(-1)])
    return words.astype(np.int8), np.array(records, dtype=np.int64), folded, blocks
