"""SOFTMAX over the last dimension: int8 in, int8 out quantized as probabilities (scale 1/256, zero point -128)."""

from __future__ import annotations

from tinydeploy.engine.quant import softmax_input_scaling
from tinydeploy.engine.registry import LoweringContext, lowering

PROBABILITY_SCALE = 1.0 / 256


@lowering("SOFTMAX", kernel="softmax")
def lower_softmax(ctx: LoweringContext):
    source = ctx.input(0, constant=False)
    result = ctx.output(0)
    if source.shape != result.shape or not source.shape:
        raise ctx.fail(f"shapes {list(source.shape)} -> {list(result.shape)} differ")
    if ctx.zero_point(result) != -128 or abs(ctx.scale(result) - PROBABILITY_SCALE) > 0.001 * PROBABILITY_SCALE:
        raise ctx.fail("the output must be quantized with scale 1/256 and zero point -128")
    multiplier, shift, diff_min = softmax_input_scaling(ctx.op.options.get("beta", 1.0), ctx.scale(source))
    depth = int(source.shape[-1])
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_softmax_params", [
        ("rows", source.elements // depth if depth else 0), ("depth", depth), ("input_multiplier", multiplier),
        ("input_left_shift", shift), ("diff_min", diff_min),
    ], f"op {ctx.op.index}: SOFTMAX")
    return ctx.lowered("td_softmax_s8", (params, ctx.ref(source), ctx.ref(result)), in_place_of=source.index)
