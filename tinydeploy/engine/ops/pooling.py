"""AVERAGE_POOL_2D and MAX_POOL_2D on int8 or int16 NHWC tensors (input and output quantized alike, as TFLite
requires)."""

from __future__ import annotations

from tinydeploy.engine.ops.common import window
from tinydeploy.engine.quant import DTYPE_RANGES, activation_range
from tinydeploy.engine.registry import LoweringContext, lowering, same


POOL_FAST_MAX_COUNT = 255  # TD_POOL_FAST_MAX_COUNT


def _lower_pool(ctx: LoweringContext, function: str):
    dtype = ctx.signature[1]
    source = ctx.input(0, (dtype,), constant=False)
    result = ctx.output(0, (dtype,))
    if ctx.scale(source) != ctx.scale(result) or ctx.zero_point(source) != ctx.zero_point(result):
        raise ctx.fail("input and output quantization differ")
    if len(source.shape) == 4 and len(result.shape) == 4 and source.shape[3] != result.shape[3]:
        raise ctx.fail("pooling cannot change the channel count")
    options = ctx.op.options
    geometry = window(ctx, source, result, options.get("filterHeight", 0), options.get("filterWidth", 0))
    low, high = activation_range(ctx.op.activation, ctx.scale(result), ctx.zero_point(result), *DTYPE_RANGES[dtype])
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_pool_params", [
        ("window", geometry), ("activation_min", low), ("activation_max", high),
    ], f"op {ctx.op.index}: {ctx.op.op} {dtype} {ctx.op.padding} {ctx.op.activation}")
    if dtype == "int16":
        return ctx.lowered(f"{function}_s16", (params, ctx.ref(source), ctx.ref(result)))
    fast = ctx.fast_kernels and function == "td_average_pool_2d" and \
        options.get("filterHeight", 0) * options.get("filterWidth", 0) <= POOL_FAST_MAX_COUNT
    if fast:
        return ctx.lowered("td_average_pool_2d_fast_s8", (params, ctx.ref(source), ctx.ref(result)),
                           kernel="pooling_fast", variant="dsp 4 channels per word")
    return ctx.lowered(f"{function}_s8", (params, ctx.ref(source), ctx.ref(result)))


@lowering("AVERAGE_POOL_2D", kernel="pooling", dtypes=same("int8", "int16"))
def lower_average_pool_2d(ctx: LoweringContext):
    return _lower_pool(ctx, "td_average_pool_2d")


@lowering("MAX_POOL_2D", kernel="pooling", dtypes=same("int8", "int16"))
def lower_max_pool_2d(ctx: LoweringContext):
    return _lower_pool(ctx, "td_max_pool_2d")
