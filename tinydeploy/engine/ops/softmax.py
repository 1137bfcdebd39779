"""SOFTMAX over the last dimension: int8 in and out (probabilities with scale 1/256, zero point -128), int8 in and
int16 out (scale 1/65536, zero point -32768), or int16 in and out (scale 1/32768, zero point 0, TFLite's lookup
tables, emitted once per model as constants)."""

from __future__ import annotations

from tinydeploy.engine.quant import quantize_multiplier, softmax_input_scaling, softmax_int16_tables
from tinydeploy.engine.registry import LoweringContext, lowering

OUTPUTS = {"int8": (1.0 / 256, -128), ("int8", "int16"): (1.0 / 65536, -32768), "int16": (1.0 / 32768, 0)}


@lowering("SOFTMAX", kernel="softmax", dtypes={("int8", "int8"), ("int8", "int16"), ("int16", "int16")})
def lower_softmax(ctx: LoweringContext):
    in_dtype, out_dtype = ctx.signature
    source = ctx.input(0, (in_dtype,), constant=False)
    result = ctx.output(0, (out_dtype,))
    if source.shape != result.shape or not source.shape:
        raise ctx.fail(f"shapes {list(source.shape)} -> {list(result.shape)} differ")
    scale, zero_point = OUTPUTS[in_dtype if in_dtype == out_dtype else (in_dtype, out_dtype)]
    if ctx.zero_point(result) != zero_point or abs(ctx.scale(result) - scale) > 0.001 * scale:
        raise ctx.fail(f"the output must be quantized with scale 1/{round(1 / scale)} and zero point {zero_point}")
    depth = int(source.shape[-1])
    rows = source.elements // depth if depth else 0
    beta = ctx.op.options.get("beta", 1.0)
    index = ctx.op.index
    if in_dtype == "int16":
        if ctx.zero_point(source) != 0:
            raise ctx.fail("the int16 input must have zero point 0")
        # the input difference scaled so that -10.0 maps to -65535 (exp(-10) is the table's end)
        multiplier, shift = quantize_multiplier(float(ctx.scale(source)) * float(beta) / (10.0 / 65535.0))
        exp_table, reciprocal_table = softmax_int16_tables()
        params = ctx.constants.struct(f"op{index}_params", "td_softmax_s16_params", [
            ("rows", rows), ("depth", depth), ("input_multiplier", multiplier), ("input_shift", shift),
            ("exp_table", ctx.constants.array("softmax_exp_table", "int16_t", exp_table,
                                              "SOFTMAX int16: exp(x) on [-10, 0] in Q0.15 (513 points)")),
            ("reciprocal_table", ctx.constants.array("softmax_reciprocal_table", "int16_t", reciprocal_table,
                                                     "SOFTMAX int16: 1 / (1 + x) on [0, 1] in Q0.15 (513 points)")),
        ], f"op {index}: SOFTMAX int16")
        return ctx.lowered("td_softmax_s16", (params, ctx.ref(source), ctx.ref(result)), in_place_of=source.index,
                           kernel="softmax_s16")
    multiplier, shift, diff_min = softmax_input_scaling(beta, ctx.scale(source))
    params = ctx.constants.struct(f"op{index}_params", "td_softmax_params", [
        ("rows", rows), ("depth", depth), ("input_multiplier", multiplier),
        ("input_left_shift", shift), ("diff_min", diff_min),
    ], f"op {index}: SOFTMAX {in_dtype} -> {out_dtype}")
    if out_dtype == "int16":
        return ctx.lowered("td_softmax_s8_s16", (params, ctx.ref(source), ctx.ref(result)))
    return ctx.lowered("td_softmax_s8", (params, ctx.ref(source), ctx.ref(result)), in_place_of=source.index)
