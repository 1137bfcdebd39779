"""SUB of two int8 or two int16 tensors (either may be constant), NumPy broadcasting, fused activation: ADD's
arithmetic with a difference. The multipliers are computed in double precision: TFLM's source computes SUB's in
single precision, but the tflite_micro runtime's outputs match double (measured on the seanet SUB models)."""

from __future__ import annotations

from tinydeploy.engine.ops.elementwise import ADD_LEFT_SHIFT, _operands, add_like_params
from tinydeploy.engine.registry import LoweringContext, lowering, same


@lowering("SUB", kernel="sub", dtypes=same("int8", "int16"))
def lower_sub(ctx: LoweringContext):
    first, second, result, shape, in_place = _operands(ctx)
    scale1, scale2, scale_out = (float(ctx.scale(t)) for t in (first, second, result))
    twice_max = 2.0 * max(scale1, scale2)
    params = add_like_params(ctx, first, second, result, shape, [
        scale1 / twice_max, scale2 / twice_max, twice_max / ((1 << ADD_LEFT_SHIFT[result.dtype]) * scale_out)])
    suffix = "s8" if result.dtype == "int8" else "s16"
    return ctx.lowered(f"td_sub_{suffix}", (params, ctx.operand(first), ctx.operand(second), ctx.ref(result)),
                       in_place_of=in_place)
