"""CONV_2D: int8 NHWC input, symmetric int8 weights [out, h, w, in], int32 bias."""

from __future__ import annotations

from tinydeploy.engine.ops.common import conv_requant, window
from tinydeploy.engine.registry import LoweringContext, lowering


@lowering("CONV_2D", kernel="conv_2d")
def lower_conv_2d(ctx: LoweringContext):
    source = ctx.input(0, constant=False)
    weights = ctx.input(1, constant=True)
    bias = ctx.optional_input(2, ("int32",), constant=True)
    result = ctx.output(0)
    if len(weights.shape) != 4:
        raise ctx.fail(f"weights have shape {list(weights.shape)}, expected [out, height, width, in]")
    out_depth, filter_h, filter_w, filter_in = weights.shape
    if len(source.shape) == 4 and source.shape[3] != filter_in:
        raise ctx.fail("grouped convolutions are not supported")
    if result.shape[-1] != out_depth or (bias is not None and bias.elements != out_depth):
        raise ctx.fail("output channels, weights and bias disagree")
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_conv_2d_params", [
        ("window", window(ctx, source, result, filter_h, filter_w)),
        ("requant", conv_requant(ctx, source, weights, result, out_depth, 0)),
    ], f"op {ctx.op.index}: CONV_2D {ctx.op.padding} {ctx.op.activation}")
    bias_arg = ctx.constants.tensor(bias, "int32_t") if bias is not None else "NULL"
    return ctx.lowered("td_conv_2d_s8", (params, ctx.ref(source), ctx.constants.tensor(weights, "int8_t"), bias_arg,
                                         ctx.ref(result)))
