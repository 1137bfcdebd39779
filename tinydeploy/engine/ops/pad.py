"""PAD and PADV2 of an int8 or int16 tensor with constant paddings (the pad value: the zero point, or PADV2's
constant)."""

from __future__ import annotations

from tinydeploy.engine.ops.shapes import MAX_DIMS, padded
from tinydeploy.engine.registry import LoweringContext, lowering, same


def _lower_pad(ctx: LoweringContext, value_input: bool):
    dtype = ctx.signature[1]
    source = ctx.input(0, (dtype,), constant=False)
    result = ctx.output(0, (dtype,))
    rank = len(source.shape)
    if rank > MAX_DIMS:
        raise ctx.fail(f"{rank} dimensions (at most {MAX_DIMS})")
    if not ctx.same_quantization(source, result):
        raise ctx.fail("input and output quantization differ")
    paddings = ctx.constant_ints(1)
    if len(paddings) != 2 * rank or min(paddings, default=0) < 0:
        raise ctx.fail(f"paddings {paddings} do not fit {rank} dimensions")
    before, after = paddings[0::2], paddings[1::2]
    expected = [int(n) + b + a for n, b, a in zip(source.shape, before, after)]
    if list(result.shape) != expected:
        raise ctx.fail(f"output shape {list(result.shape)} does not follow from paddings {paddings}")
    value = ctx.zero_point(result)
    if value_input and (constant := ctx.optional_input(2, (dtype,), constant=True)) is not None:
        if constant.elements != 1 or not ctx.same_quantization(constant, result):
            raise ctx.fail("the pad value must be one value quantized like the output")
        value = int(constant.values().reshape(-1)[0])
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_pad_params", [
        ("output_dims", padded(result.shape)), ("input_dims", padded(source.shape)),
        ("before", padded(before, fill=0)), ("value", value),
    ], f"op {ctx.op.index}: {ctx.op.op}")
    if dtype == "int16":
        return ctx.lowered("td_pad_s16", (params, ctx.ref(source), ctx.ref(result)), kernel="pad_s16")
    return ctx.lowered("td_pad_s8", (params, ctx.ref(source), ctx.ref(result)))


@lowering("PAD", kernel="pad", dtypes=same("int8", "int16"))
def lower_pad(ctx: LoweringContext):
    return _lower_pad(ctx, value_input=False)


@lowering("PADV2", kernel="pad", dtypes=same("int8", "int16"))
def lower_padv2(ctx: LoweringContext):
    return _lower_pad(ctx, value_input=True)
