"""MAXIMUM and MINIMUM of two int8 or two int16 tensors (either may be constant), NumPy broadcasting: raw values
compared, as TFLite does (it does not rescale; the converter quantizes inputs and output alike)."""

from __future__ import annotations

from tinydeploy.engine.ops.elementwise import broadcast_operands
from tinydeploy.engine.registry import LoweringContext, lowering, same


def _lower(ctx: LoweringContext, name: str):
    first, second, result, fields, in_place = broadcast_operands(ctx)  # any zero points: raw values compared
    shape = ctx.constants.struct(f"op{ctx.op.index}_shape", "td_broadcast", fields,
                                 f"op {ctx.op.index}: {ctx.op.op} {result.dtype}")
    suffix = "s8" if result.dtype == "int8" else "s16"
    return ctx.lowered(f"td_{name}_{suffix}", (shape, ctx.operand(first), ctx.operand(second), ctx.ref(result)),
                       in_place_of=in_place)


@lowering("MAXIMUM", kernel="maximum_minimum", dtypes=same("int8", "int16"))
def lower_maximum(ctx: LoweringContext):
    return _lower(ctx, "maximum")


@lowering("MINIMUM", kernel="maximum_minimum", dtypes=same("int8", "int16"))
def lower_minimum(ctx: LoweringContext):
    return _lower(ctx, "minimum")
