"""MAXIMUM and MINIMUM of two int8 or two int16 tensors (either may be constant), NumPy broadcasting: raw values
compared, as TFLite does (it does not rescale; the converter quantizes inputs and output alike)."""

from __future__ import annotations

from tinydeploy.engine.ops.shapes import MAX_DIMS, broadcast_strides, padded
from tinydeploy.engine.registry import LoweringContext, lowering, same


def _lower(ctx: LoweringContext, name: str):
    dtype = ctx.signature[1]
    first, second = ctx.input(0, (dtype,)), ctx.input(1, (dtype,))
    result = ctx.output(0, (dtype,))
    if max(len(first.shape), len(second.shape), len(result.shape)) > MAX_DIMS:
        raise ctx.fail(f"more than {MAX_DIMS} dimensions")
    if first.is_constant and second.is_constant:
        raise ctx.fail("both inputs are constant")
    strides = [broadcast_strides(t.shape, result.shape) for t in (first, second)]
    if None in strides:
        raise ctx.fail(f"input shapes {list(first.shape)} and {list(second.shape)} do not broadcast to "
                       f"{list(result.shape)}")
    shape = ctx.constants.struct(f"op{ctx.op.index}_shape", "td_broadcast", [
        ("dims", padded(result.shape)), ("strides1", strides[0]), ("strides2", strides[1]),
    ], f"op {ctx.op.index}: {ctx.op.op} {dtype}")
    in_place = next((t.index for t in (first, second) if not t.is_constant and t.shape == result.shape), None)
    suffix = "s8" if dtype == "int8" else "s16"
    return ctx.lowered(f"td_{name}_{suffix}", (shape, ctx.operand(first), ctx.operand(second), ctx.ref(result)),
                       in_place_of=in_place)


@lowering("MAXIMUM", kernel="maximum_minimum", dtypes=same("int8", "int16"))
def lower_maximum(ctx: LoweringContext):
    return _lower(ctx, "maximum")


@lowering("MINIMUM", kernel="maximum_minimum", dtypes=same("int8", "int16"))
def lower_minimum(ctx: LoweringContext):
    return _lower(ctx, "minimum")
