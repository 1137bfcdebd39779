"""LOGISTIC and TANH on int8 (fixed-output quantization: 1/256 at -128 and 1/128 at 0, as TFLite requires) and on
int16 (zero points 0, output scale 2^-15; TFLite's interpolated sigmoid table in activations_s16.c)."""

from __future__ import annotations

from tinydeploy.engine.ops.common import symmetric, unary_tensors
from tinydeploy.engine.quant import transcendental_input_scaling, transcendental_int16_scaling
from tinydeploy.engine.registry import LoweringContext, lowering, same

INT16_OUTPUT_SCALE = 1.0 / 32768


def _lower_s16(ctx: LoweringContext, function: str, pot_shifts: tuple[int, ...]):
    source, result = unary_tensors(ctx, ("int16",))
    symmetric(ctx, source, result)
    if abs(ctx.scale(result) - INT16_OUTPUT_SCALE) > 1e-3 * INT16_OUTPUT_SCALE:
        raise ctx.fail("the int16 output must be quantized with scale 1/32768")
    multiplier, shift = transcendental_int16_scaling(ctx.scale(source), pot_shifts)
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_transcendental_s16_params", [
        ("count", source.elements), ("input_multiplier", multiplier), ("input_shift", shift),
    ], f"op {ctx.op.index}: {ctx.op.op} int16")
    return ctx.lowered(function, (params, ctx.ref(source), ctx.ref(result)), in_place_of=source.index,
                       kernel="activations_s16")


def _lower(ctx: LoweringContext, function: str, output_scale: float, output_zero_point: int):
    source, result = unary_tensors(ctx)
    if ctx.zero_point(result) != output_zero_point or abs(ctx.scale(result) - output_scale) > 1e-6 * output_scale:
        raise ctx.fail(f"the output must be quantized with scale {output_scale:g} and zero point {output_zero_point}")
    multiplier, shift, radius = transcendental_input_scaling(ctx.scale(source))
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_transcendental_params", [
        ("count", source.elements), ("input_zero_point", ctx.zero_point(source)), ("input_range_radius", radius),
        ("input_multiplier", multiplier), ("input_left_shift", shift),
    ], f"op {ctx.op.index}: {ctx.op.op}")
    return ctx.lowered(function, (params, ctx.ref(source), ctx.ref(result)), in_place_of=source.index)


@lowering("LOGISTIC", kernel="activations", dtypes=same("int8", "int16"))
def lower_logistic(ctx: LoweringContext):
    if ctx.signature[0] == "int16":
        return _lower_s16(ctx, "td_logistic_s16", pot_shifts=(0,))
    return _lower(ctx, "td_logistic_s8", 1.0 / 256, -128)


@lowering("TANH", kernel="activations", dtypes=same("int8", "int16"))
def lower_tanh(ctx: LoweringContext):
    if ctx.signature[0] == "int16":
        return _lower_s16(ctx, "td_tanh_s16", pot_shifts=(0, 1))
    return _lower(ctx, "td_tanh_s8", 1.0 / 128, 0)
