"""QUANTIZE (float32 -> int8, int8 -> int8) and DEQUANTIZE (int8 -> float32): float models' edges.

Float tensors live in the activation buffer as native float32 (the engine's input/output bytes carry them)."""

from __future__ import annotations

import numpy as np

from tinydeploy.engine.quant import quantize_multiplier
from tinydeploy.engine.registry import LoweringContext, lowering


def _affine(ctx: LoweringContext, tensor, count: int) -> str:
    return ctx.constants.struct(f"op{ctx.op.index}_params", "td_affine_params", [
        ("count", count), ("zero_point", ctx.zero_point(tensor)), ("scale", float(np.float32(ctx.scale(tensor)))),
    ], f"op {ctx.op.index}: {ctx.op.op}")


@lowering("QUANTIZE", kernel="quantize", dtypes={("float32", "int8"), ("int8", "int8")})
def lower_quantize(ctx: LoweringContext):
    source = ctx.input(0, ("float32", "int8"), constant=False)
    result = ctx.output(0)
    if source.elements != result.elements:
        raise ctx.fail(f"shapes {list(source.shape)} -> {list(result.shape)} differ")
    if source.dtype == "float32":
        # int8 output bytes never overtake the float input being read: safe in place.
        return ctx.lowered("td_quantize_f32_s8", (_affine(ctx, result, result.elements), ctx.ref(source),
                                                  ctx.ref(result)), in_place_of=source.index)
    multiplier, shift = quantize_multiplier(float(ctx.scale(source)) / float(ctx.scale(result)))
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_requantize_params", [
        ("count", result.elements), ("input_zero_point", ctx.zero_point(source)),
        ("output_zero_point", ctx.zero_point(result)), ("multiplier", multiplier), ("shift", shift),
    ], f"op {ctx.op.index}: QUANTIZE int8 -> int8")
    return ctx.lowered("td_requantize_s8", (params, ctx.ref(source), ctx.ref(result)), in_place_of=source.index)


@lowering("DEQUANTIZE", kernel="quantize", dtypes={("int8", "float32")})
def lower_dequantize(ctx: LoweringContext):
    source = ctx.input(0, constant=False)
    result = ctx.output(0, ("float32",))
    if source.elements != result.elements:
        raise ctx.fail(f"shapes {list(source.shape)} -> {list(result.shape)} differ")
    return ctx.lowered("td_dequantize_s8_f32", (_affine(ctx, source, source.elements), ctx.ref(source),
                                                 ctx.ref(result)))
