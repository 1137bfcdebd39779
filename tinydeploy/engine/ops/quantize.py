"""QUANTIZE (float32 -> int8/int16, and between int8, int16 and int32) and DEQUANTIZE (int8/int16 -> float32).

Float tensors live in the activation buffer as native float32 (the engine's input/output bytes carry them)."""

from __future__ import annotations

import numpy as np

from tinydeploy.engine.quant import quantize_multiplier
from tinydeploy.engine.registry import LoweringContext, c_struct, lowering

INTEGERS = ("int8", "int16", "int32")
# TFLM's QUANTIZE between integer types (uint8 aside)
REQUANTIZE = {("int8", "int8"), ("int16", "int8"), ("int8", "int16"), ("int8", "int32"), ("int16", "int16"),
              ("int16", "int32"), ("int32", "int8"), ("int32", "int16")}


def _affine(ctx: LoweringContext, tensor, count: int) -> str:
    return ctx.constants.struct(f"op{ctx.op.index}_params", "td_affine_params", [
        ("count", count), ("zero_point", ctx.zero_point(tensor)), ("scale", float(np.float32(ctx.scale(tensor)))),
    ], f"op {ctx.op.index}: {ctx.op.op}")


@lowering("QUANTIZE", kernel="quantize",
          dtypes={("float32", "int8"), ("float32", "int16"), *REQUANTIZE})
def lower_quantize(ctx: LoweringContext):
    source = ctx.input(0, ("float32", *INTEGERS), constant=False)
    result = ctx.output(0, ("int8", "int16") if source.dtype == "float32" else INTEGERS)
    if source.elements != result.elements:
        raise ctx.fail(f"shapes {list(source.shape)} -> {list(result.shape)} differ")
    if source.dtype == "float32":
        # integer output bytes never overtake the float input being read: safe in place.
        function, kernel = (("td_quantize_f32_s8", "quantize") if result.dtype == "int8"
                            else ("td_quantize_f32_s16", "quantize_s16"))
        return ctx.lowered(function, (_affine(ctx, result, result.elements), ctx.ref(source), ctx.ref(result)),
                           in_place_of=source.index, kernel=kernel)
    if (source.dtype, result.dtype) not in REQUANTIZE:
        raise ctx.fail(f"{source.dtype} -> {result.dtype} is not a requantization TFLM runs")
    multiplier, shift = quantize_multiplier(float(ctx.scale(source)) / float(ctx.scale(result)))
    fields = [("count", result.elements), ("input_zero_point", ctx.zero_point(source)),
              ("output_zero_point", ctx.zero_point(result)), ("multiplier", multiplier), ("shift", shift)]
    comment = f"op {ctx.op.index}: QUANTIZE {source.dtype} -> {result.dtype}"
    # the output is written no faster than the input is read when it is no wider: safe in place then
    in_place = source.index if result.itemsize <= source.itemsize else None
    if source.dtype == result.dtype == "int8":
        params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_requantize_params", fields, comment)
        return ctx.lowered("td_requantize_s8", (params, ctx.ref(source), ctx.ref(result)), in_place_of=in_place)
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_requantize_any_params", [
        ("requantize", c_struct(fields)),
        ("input_bytes", source.itemsize), ("output_bytes", result.itemsize)], comment)
    return ctx.lowered("td_requantize_any", (params, ctx.ref(source, "void"), ctx.ref(result, "void")),
                       in_place_of=in_place, kernel="quantize_s16")


@lowering("DEQUANTIZE", kernel="quantize", dtypes={("int8", "float32"), ("int16", "float32")})
def lower_dequantize(ctx: LoweringContext):
    source = ctx.input(0, ("int8", "int16"), constant=False)
    result = ctx.output(0, ("float32",))
    if source.elements != result.elements:
        raise ctx.fail(f"shapes {list(source.shape)} -> {list(result.shape)} differ")
    if source.dtype == "int16":
        return ctx.lowered("td_dequantize_s16_f32", (_affine(ctx, source, source.elements), ctx.ref(source),
                                                      ctx.ref(result)), kernel="quantize_s16")
    return ctx.lowered("td_dequantize_s8_f32", (_affine(ctx, source, source.elements), ctx.ref(source),
                                                 ctx.ref(result)))
