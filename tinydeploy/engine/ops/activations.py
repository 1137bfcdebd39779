"""LOGISTIC and TANH on int8 (fixed-output quantization: 1/256 at -128 and 1/128 at 0, as TFLite requires)."""

from __future__ import annotations

from tinydeploy.engine.quant import transcendental_input_scaling
from tinydeploy.engine.registry import LoweringContext, lowering


def _lower(ctx: LoweringContext, function: str, output_scale: float, output_zero_point: int):
    source = ctx.input(0, constant=False)
    result = ctx.output(0)
    if source.elements != result.elements:
        raise ctx.fail(f"shapes {list(source.shape)} -> {list(result.shape)} differ")
    if ctx.zero_point(result) != output_zero_point or abs(ctx.scale(result) - output_scale) > 1e-6 * output_scale:
        raise ctx.fail(f"the output must be quantized with scale {output_scale:g} and zero point {output_zero_point}")
    multiplier, shift, radius = transcendental_input_scaling(ctx.scale(source))
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_transcendental_params", [
        ("count", source.elements), ("input_zero_point", ctx.zero_point(source)), ("input_range_radius", radius),
        ("input_multiplier", multiplier), ("input_left_shift", shift),
    ], f"op {ctx.op.index}: {ctx.op.op}")
    return ctx.lowered(function, (params, ctx.ref(source), ctx.ref(result)), in_place_of=source.index)


@lowering("LOGISTIC", kernel="activations")
def lower_logistic(ctx: LoweringContext):
    return _lower(ctx, "td_logistic_s8", 1.0 / 256, -128)


@lowering("TANH", kernel="activations")
def lower_tanh(ctx: LoweringContext):
    return _lower(ctx, "td_tanh_s8", 1.0 / 128, 0)
