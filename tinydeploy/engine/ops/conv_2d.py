"""CONV_2D: int8 NHWC input, symmetric int8 weights [out, h, w, in], int32 bias.

With fast kernels (conv_2d_fast.c, td_dot.h) the weights stay int8, laid out here for the kernel: four output
pixels per pass when the scratch for their widened inputs fits (at the op's free space in the plan, else on the
kernel's stack), else one pixel per pass; without room for even that, the reference kernel."""

from __future__ import annotations

from tinydeploy.engine.ops.common import bias_input, conv_2d_shape, conv_requant, mat_layer, mat_quant, window
from tinydeploy.engine.ops.weighted_s16 import lower_conv_2d_s16
from tinydeploy.engine.registry import LoweringContext, ScratchRef, lowering, same


def fast_layout(groups: int, in_depth: int, pixels: int, limit: int) -> tuple[str, int] | None:
    """("pixels4" | "channels4", scratch bytes) for conv_2d_fast.c within `limit` scratch bytes, or None."""
    patch = groups * 4 if in_depth % 4 else 0
    if pixels >= 4 and 32 * groups + patch <= limit:
        return "pixels4", 32 * groups + patch
    if 8 * groups + patch <= limit:
        return "channels4", 8 * groups + patch
    return None


@lowering("CONV_2D", kernel="conv_2d", dtypes=same("int8", "int16"))
def lower_conv_2d(ctx: LoweringContext):
    if ctx.signature[0] == "int16":
        return lower_conv_2d_s16(ctx)
    source = ctx.input(0, constant=False)
    weights = ctx.input(1, constant=True)
    result = ctx.output(0)
    out_depth, filter_h, filter_w, filter_in = conv_2d_shape(ctx, source, weights, result)
    bias = bias_input(ctx, out_depth)
    geometry = window(ctx, source, result, filter_h, filter_w)
    index = ctx.op.index
    groups = (filter_h * filter_w * filter_in + 3) // 4
    pixels = result.elements // max(out_depth, 1)
    layout = fast_layout(groups, filter_in, pixels, ctx.scratch_limit) if ctx.fast_kernels else None
    if layout is not None:
        mode, scratch = layout
        mat = mat_layer(ctx, source, weights, bias, result, weights.values().astype("int64").reshape(out_depth, -1),
                        mode)
        packed = ctx.constants.array(f"op{index}_weights", "int8_t", mat.weights,
                                     f"op {index}: weights of tensor {weights.index}, {mode} layout")
        records = ctx.constants.array(f"op{index}_records", "int32_t", mat.records,
                                      f"op {index}: per output channel bias, shifts, multiplier"
                                      + ("" if mode == "pixels4" else ", round (blocks of four)"))
        params = ctx.constants.struct(f"op{index}_params", "td_conv_2d_fast_params", [
            ("window", geometry), ("quant", mat_quant(ctx, source, result, mat.folded)), ("groups", groups),
            ("pixels4", int(mode == "pixels4")), ("scratch_bytes", scratch), ("weights", packed),
            ("records", records), ("channels", out_depth),
        ], f"op {index}: CONV_2D {ctx.op.padding} {ctx.op.activation}, {mode}")
        shape = f"{filter_h}x{filter_w}"
        gather = "rows" if filter_in % 4 == 0 else "im2col"
        variant = (f"dsp {shape} {gather} {'4 pixels' if mode == 'pixels4' else '1 pixel'}"
                   + ("" if mat.folded else ", exact requantization in C")
                   + (f", {mat.constant_channels} constant channels" if mat.constant_channels else ""))
        return ctx.lowered("td_conv_2d_fast_s8", (params, ctx.ref(source), ScratchRef(optional=True),
                                                  ctx.ref(result)),
                           kernel="conv_2d_fast", variant=variant, scratch_request=scratch)
    params = ctx.constants.struct(f"op{index}_params", "td_conv_2d_params", [
        ("window", geometry),
        ("requant", conv_requant(ctx, source, weights, result, out_depth, 0)),
    ], f"op {index}: CONV_2D {ctx.op.padding} {ctx.op.activation}")
    bias_arg = ctx.constants.tensor(bias, "int32_t") if bias is not None else "NULL"
    variant = "reference" if not ctx.fast_kernels else "reference (no room for the fast kernel's scratch)"
    return ctx.lowered("td_conv_2d_s8", (params, ctx.ref(source), ctx.constants.tensor(weights, "int8_t"), bias_arg,
                                         ctx.ref(result)), variant=variant)
