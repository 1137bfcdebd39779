"""RELU and RELU6 as ops on int8 or int16 (fused activations are handled by the ops they follow).

RELU rescales to the output's quantization and clamps at its zero; RELU6 clamps the raw input between the
input's quantized 0 and 6 and keeps its quantization (TFLM's kernels do exactly that)."""

from __future__ import annotations

import numpy as np

from tinydeploy.engine.ops.common import symmetric, unary_tensors
from tinydeploy.engine.quant import DTYPE_RANGES, quantize_multiplier, round_half_away
from tinydeploy.engine.registry import LoweringContext, lowering, same

IDENTITY = (1 << 30, 1)  # multiplier and shift that rescale exactly by 1


def _params(ctx: LoweringContext, source, fields) -> str:
    return ctx.constants.struct(f"op{ctx.op.index}_params", "td_relu_params", [("count", source.elements), *fields],
                                f"op {ctx.op.index}: {ctx.op.op} {source.dtype}")


def _call(ctx: LoweringContext, source, result, params: str):
    suffix = "s8" if source.dtype == "int8" else "s16"
    return ctx.lowered(f"td_relu_{suffix}", (params, ctx.ref(source), ctx.ref(result)), in_place_of=source.index)


def _tensors(ctx: LoweringContext):
    source, result = unary_tensors(ctx, (ctx.signature[1],))
    if source.dtype == "int16":
        symmetric(ctx, source, result)
    return source, result


@lowering("RELU", kernel="relu", dtypes=same("int8", "int16"))
def lower_relu(ctx: LoweringContext):
    source, result = _tensors(ctx)
    low, high = DTYPE_RANGES[source.dtype]
    # double precision: the tflite_micro runtime's ratios are (TFLM's source divides in single precision first)
    multiplier, shift = quantize_multiplier(float(ctx.scale(source)) / float(ctx.scale(result)))
    return _call(ctx, source, result, _params(ctx, source, [
        ("input_zero_point", ctx.zero_point(source)), ("output_zero_point", ctx.zero_point(result)),
        ("multiplier", multiplier), ("shift", shift),
        ("activation_min", max(low, ctx.zero_point(result))), ("activation_max", high)]))


@lowering("RELU6", kernel="relu", dtypes=same("int8", "int16"))
def lower_relu6(ctx: LoweringContext):
    source, result = _tensors(ctx)
    low, high = DTYPE_RANGES[source.dtype]
    zero = ctx.zero_point(source)
    six = min(max(zero + round_half_away(float(np.float32(6.0) / np.float32(ctx.scale(source)))), low), high)
    return _call(ctx, source, result, _params(ctx, source, [
        ("input_zero_point", 0), ("output_zero_point", 0), ("multiplier", IDENTITY[0]), ("shift", IDENTITY[1]),
        ("activation_min", zero), ("activation_max", six)]))
