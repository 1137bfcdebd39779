"""PRELU on int8 or int16 with an int8 alpha broadcast NumPy-style (constant or computed)."""

from __future__ import annotations

from tinydeploy.engine.ops.shapes import MAX_DIMS, broadcast_strides, padded
from tinydeploy.engine.quant import quantize_multiplier
from tinydeploy.engine.registry import LoweringContext, c_struct, lowering, same


@lowering("PRELU", kernel="prelu", dtypes=same("int8", "int16"))
def lower_prelu(ctx: LoweringContext):
    dtype = ctx.signature[1]
    source = ctx.input(0, (dtype,), constant=False)
    alpha = ctx.input(1, ("int8",))
    result = ctx.output(0, (dtype,))
    if max(len(source.shape), len(alpha.shape), len(result.shape)) > MAX_DIMS:
        raise ctx.fail(f"more than {MAX_DIMS} dimensions")
    strides = [broadcast_strides(t.shape, result.shape) for t in (source, alpha)]
    if None in strides:
        raise ctx.fail(f"input shape {list(source.shape)} and alpha shape {list(alpha.shape)} do not broadcast to "
                       f"{list(result.shape)}")
    input_scale, alpha_scale, output_scale = (float(ctx.scale(t)) for t in (source, alpha, result))
    identity = quantize_multiplier(input_scale / output_scale)
    scaled = quantize_multiplier(input_scale * alpha_scale / output_scale)
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_prelu_params", [
        ("shape", c_struct([("dims", padded(result.shape)), ("strides1", strides[0]), ("strides2", strides[1])])),
        ("input_offset", -ctx.zero_point(source)), ("alpha_offset", -ctx.zero_point(alpha)),
        ("output_offset", ctx.zero_point(result)), ("identity_multiplier", identity[0]),
        ("identity_shift", identity[1]), ("alpha_multiplier", scaled[0]), ("alpha_shift", scaled[1]),
    ], f"op {ctx.op.index}: PRELU {dtype}")
    suffix = "s8" if dtype == "int8" else "s16"
    in_place = source.index if source.shape == result.shape else None
    return ctx.lowered(f"td_prelu_{suffix}", (params, ctx.ref(source), ctx.operand(alpha), ctx.ref(result)),
                       in_place_of=in_place)
