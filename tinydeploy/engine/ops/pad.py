"""PAD and PADV2 of an int8 or int16 tensor with constant paddings (the pad value: the zero point, or PADV2's
constant). The kernels write the output in order, each element after reading its source, so the output may start
before its input and run over it (pad_overlap_limit): a padded tensor needs little more than its own memory."""

from __future__ import annotations

import numpy as np

from tinydeploy.engine.ops.shapes import MAX_DIMS, padded
from tinydeploy.engine.registry import LoweringContext, lowering, same


def pad_overlap_limit(input_shape, before, after, element_bytes: int) -> int:
    """How many bytes after its input's start the output may start (negative: before it) so that writing output
    element k never overwrites an input element still to be read. Input elements are read in order, one per inside
    output element: after writing element k, the next one to read is the count of inside elements up to k."""
    inside = np.ones((), dtype=bool)
    for size, low, high in zip((int(d) for d in input_shape), before, after):
        axis = np.concatenate([np.zeros(low, bool), np.ones(size, bool), np.zeros(high, bool)])
        inside = inside[..., None] & axis
    inside = inside.reshape(-1)
    read = np.cumsum(inside)  # input elements read once element k is written
    pending = read < read[-1] if read.size else read.astype(bool)  # input elements remain to be read
    if not pending.any():
        return 1 << 30  # nothing left to protect after the first write
    positions = np.arange(1, inside.size + 1)  # elements written so far
    return int((read[pending] - positions[pending]).min()) * element_bytes


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
    ctx.streams_over = source.index, pad_overlap_limit(source.shape, before, after, source.itemsize)
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_pad_params", [
        ("output_dims", padded(result.shape)), ("input_dims", padded(source.shape)),
        ("before", padded(before, fill=0)), ("value", value),
    ], f"op {ctx.op.index}: {ctx.op.op}")
    if dtype == "int16":
        return ctx.lowered("td_pad_s16", (params, ctx.ref(source), ctx.ref(result)))
    return ctx.lowered("td_pad_s8", (params, ctx.ref(source), ctx.ref(result)))


@lowering("PAD", kernel="pad", dtypes=same("int8", "int16"))
def lower_pad(ctx: LoweringContext):
    return _lower_pad(ctx, value_input=False)


@lowering("PADV2", kernel="pad", dtypes=same("int8", "int16"))
def lower_padv2(ctx: LoweringContext):
    return _lower_pad(ctx, value_input=True)
