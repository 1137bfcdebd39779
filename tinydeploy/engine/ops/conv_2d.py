"""CONV_2D: int8 NHWC input, symmetric int8 weights [out, h, w, in], int32 bias.

With fast kernels the generator picks, per layer, how conv_2d_fast.c reads each output pixel's receptive field:
straight from the input row by row (input depth a multiple of 4) or gathered into a small im2col patch first
(the first layers: depth 1 or 3). Either way the weights are widened and reordered here for SMLAD."""

from __future__ import annotations

from tinydeploy.engine.ops.common import conv_requant, fast_requant, widened_weights, window
from tinydeploy.engine.ops.weighted_s16 import lower_conv_2d_s16
from tinydeploy.engine.registry import LoweringContext, lowering, same

PATCH_MAX_BYTES = 64  # TD_CONV_FAST_PATCH_MAX in conv_2d_fast.h
ROWS_MAX = 8  # TD_CONV_FAST_ROWS_MAX


def fast_layout(filter_h: int, filter_w: int, in_depth: int, dilation_w: int) -> tuple[str, int] | None:
    """("rows", 0) or ("im2col", patch bytes) for conv_2d_fast.c, None when neither fits."""
    if in_depth % 4 == 0 and (dilation_w == 1 or filter_w == 1) and filter_h <= ROWS_MAX:
        return "rows", 0
    patch = (filter_h * filter_w * in_depth + 3) // 4 * 4
    return ("im2col", patch) if patch <= PATCH_MAX_BYTES else None


@lowering("CONV_2D", kernel="conv_2d", dtypes=same("int8", "int16"))
def lower_conv_2d(ctx: LoweringContext):
    if ctx.signature[0] == "int16":
        return lower_conv_2d_s16(ctx)
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
    geometry = window(ctx, source, result, filter_h, filter_w)
    layout = fast_layout(filter_h, filter_w, filter_in, ctx.op.options.get("dilationWFactor", 1))
    index = ctx.op.index
    if ctx.fast_kernels and layout is not None:
        mode, patch = layout
        words = widened_weights(weights.values().reshape(out_depth, -1))
        packed = ctx.constants.array(f"op{index}_widened", "uint32_t", words,
                                     f"op {index}: weights of tensor {weights.index} widened for SMLAD")
        params = ctx.constants.struct(f"op{index}_params", "td_conv_2d_fast_params", [
            ("window", geometry),
            ("requant", fast_requant(ctx, source, weights, bias, result, out_depth, 0)),
            ("groups", (filter_h * filter_w * filter_in + 3) // 4), ("patch_bytes", patch), ("weights", packed),
        ], f"op {index}: CONV_2D {ctx.op.padding} {ctx.op.activation}, {mode}")
        shape = "1x1" if filter_h == filter_w == 1 else f"{filter_h}x{filter_w}"
        variant = f"dsp {shape} " + ("rows" if mode == "rows" else f"im2col {patch} B")
        return ctx.lowered("td_conv_2d_fast_s8", (params, ctx.ref(source), ctx.ref(result)), kernel="conv_2d_fast",
                           variant=variant)
    params = ctx.constants.struct(f"op{index}_params", "td_conv_2d_params", [
        ("window", geometry),
        ("requant", conv_requant(ctx, source, weights, result, out_depth, 0)),
    ], f"op {index}: CONV_2D {ctx.op.padding} {ctx.op.activation}")
    bias_arg = ctx.constants.tensor(bias, "int32_t") if bias is not None else "NULL"
    return ctx.lowered("td_conv_2d_s8", (params, ctx.ref(source), ctx.constants.tensor(weights, "int8_t"), bias_arg,
                                         ctx.ref(result)))
