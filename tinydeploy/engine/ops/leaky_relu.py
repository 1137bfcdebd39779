"""LEAKY_RELU on int8 or int16: two rescales (identity and alpha) chosen by the sign of x - zero point."""

from __future__ import annotations

from tinydeploy.engine.ops.common import unary_tensors
from tinydeploy.engine.quant import f32, quantize_multiplier, quantize_signed_multiplier
from tinydeploy.engine.registry import LoweringContext, lowering, same


@lowering("LEAKY_RELU", kernel="leaky_relu", dtypes=same("int8", "int16"))
def lower_leaky_relu(ctx: LoweringContext):
    dtype = ctx.signature[1]
    source, result = unary_tensors(ctx, (dtype,))  # any zero points: TFLM's LEAKY_RELU takes them at int16 too
    input_scale, output_scale = float(ctx.scale(source)), float(ctx.scale(result))
    alpha = f32(ctx.op.options.get("alpha", 0.0))
    # in double precision: TFLM's source rounds these ratios to single precision first, but the tflite_micro
    # runtime's outputs match double (single differs by 1 LSB on several seanet models)
    alpha_multiplier, alpha_shift, negative = quantize_signed_multiplier(input_scale * alpha / output_scale)
    identity_multiplier, identity_shift = quantize_multiplier(input_scale / output_scale)
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_leaky_relu_params", [
        ("count", source.elements), ("input_zero_point", ctx.zero_point(source)),
        ("output_zero_point", ctx.zero_point(result)), ("identity_multiplier", identity_multiplier),
        ("identity_shift", identity_shift), ("alpha_multiplier", alpha_multiplier), ("alpha_shift", alpha_shift),
        ("alpha_negative", negative),
    ], f"op {ctx.op.index}: LEAKY_RELU {dtype} alpha {alpha:g}")
    suffix = "s8" if dtype == "int8" else "s16"
    return ctx.lowered(f"td_leaky_relu_{suffix}", (params, ctx.ref(source), ctx.ref(result)),
                       in_place_of=source.index)
