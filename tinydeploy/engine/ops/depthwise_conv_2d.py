"""DEPTHWISE_CONV_2D: int8 NHWC input, symmetric int8 weights [1, h, w, in * multiplier], int32 bias."""

from __future__ import annotations

from tinydeploy.engine.ops.common import conv_requant, window
from tinydeploy.engine.registry import LoweringContext, lowering


@lowering("DEPTHWISE_CONV_2D", kernel="depthwise_conv_2d")
def lower_depthwise_conv_2d(ctx: LoweringContext):
    source = ctx.input(0, constant=False)
    weights = ctx.input(1, constant=True)
    bias = ctx.optional_input(2, ("int32",), constant=True)
    result = ctx.output(0)
    if len(weights.shape) != 4 or weights.shape[0] != 1 or len(source.shape) != 4:
        raise ctx.fail(f"weights have shape {list(weights.shape)}, expected [1, height, width, channels]")
    _, filter_h, filter_w, out_depth = weights.shape
    in_depth = source.shape[3]
    if in_depth == 0 or out_depth % in_depth or result.shape[-1] != out_depth:
        raise ctx.fail(f"{out_depth} output channels are not a multiple of {in_depth} input channels")
    if bias is not None and bias.elements != out_depth:
        raise ctx.fail("bias and output channels disagree")
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_depthwise_conv_2d_params", [
        ("window", window(ctx, source, result, filter_h, filter_w)),
        ("depth_multiplier", out_depth // in_depth),
        ("requant", conv_requant(ctx, source, weights, result, out_depth, 3)),
    ], f"op {ctx.op.index}: DEPTHWISE_CONV_2D {ctx.op.padding} {ctx.op.activation}")
    bias_arg = ctx.constants.tensor(bias, "int32_t") if bias is not None else "NULL"
    return ctx.lowered("td_depthwise_conv_2d_s8", (params, ctx.ref(source), ctx.constants.tensor(weights, "int8_t"),
                                                   bias_arg, ctx.ref(result)))
