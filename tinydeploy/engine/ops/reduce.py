"""MEAN (int8, int16) and REDUCE_MAX (int8) over constant axes (reduce.c). MEAN sums in int32 and rescales once
with the division folded in, as TFLM does; REDUCE_MAX keeps the input's quantization, which TFLM requires.

TFLM has no int16 REDUCE_MAX kernel (it fails the model), so there is nothing to be bit-exact with: not lowered."""

from __future__ import annotations

import numpy as np

from tinydeploy.engine.ops.shapes import MAX_DIMS, padded, strides
from tinydeploy.engine.quant import quantize_multiplier
from tinydeploy.engine.registry import LoweringContext, c_struct, lowering, same
from tinydeploy.model.tflite import Tensor

INT32_MAX = (1 << 31) - 1


def mean_multiplier(real_scale: float, count: int) -> tuple[int, int]:
    """The rescale input scale / output scale with the division by `count` folded in, as the reference does:
    the Q31 multiplier shifted up by floor(log2(count)) (at most 32, keeping the shift >= -31), divided by count
    with truncation."""
    multiplier, shift = quantize_multiplier(real_scale)
    extra = max(min(count.bit_length() - 1, 32, 31 + shift), 0)
    return (multiplier << extra) // count, shift - extra


def _reduce_shape(ctx: LoweringContext, source: Tensor, result: Tensor) -> tuple[list, set[int], int]:
    """The td_reduce_shape fields of a reduction over the op's constant axes (input 1), the axes and the inputs
    per output."""
    rank = len(source.shape)
    if rank > MAX_DIMS:
        raise ctx.fail(f"{rank} dimensions (at most {MAX_DIMS})")
    axes = set()
    for axis in ctx.constant_ints(1):
        if not -rank <= axis < rank:
            raise ctx.fail(f"axis {axis} is out of range for {rank} dimensions")
        axes.add(axis % rank)
    kept = [1 if d in axes else int(n) for d, n in enumerate(source.shape)]
    if result.elements != int(np.prod(kept)):
        raise ctx.fail(f"output shape {list(result.shape)} does not follow from reducing axes {sorted(axes)}")
    count = int(np.prod([int(source.shape[d]) for d in axes])) if axes else 1
    if count < 1:
        raise ctx.fail("reduces over an empty axis")
    input_dims = padded(source.shape)
    offset = MAX_DIMS - rank
    reduced = [int(n) if d - offset in axes else 1 for d, n in enumerate(input_dims)]
    shape = [("input_strides", strides(input_dims)), ("kept_dims", padded(kept)), ("reduced_dims", reduced)]
    return shape, axes, count


@lowering("MEAN", kernel="reduce", dtypes=same("int8", "int16"))
def lower_mean(ctx: LoweringContext):
    dtype = ctx.signature[0]
    source = ctx.input(0, (dtype,), constant=False)
    result = ctx.output(0, (dtype,))
    shape, axes, count = _reduce_shape(ctx, source, result)
    input_zero_point = ctx.zero_point(source)
    # The kernel sums in int32, then subtracts zero point * count: both must fit, as they do in TFLM's int32 sum.
    largest_input = 1 << (8 * source.itemsize - 1)
    if count * (largest_input + abs(input_zero_point)) > INT32_MAX:
        raise ctx.fail(f"averages {count} values per output, more than an int32 sum of {dtype} holds")
    multiplier, shift = mean_multiplier(float(ctx.scale(source)) / float(ctx.scale(result)), count)
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_mean_params", [
        ("shape", c_struct(shape)), ("count", count), ("input_zero_point", input_zero_point),
        ("output_zero_point", ctx.zero_point(result)), ("multiplier", multiplier), ("shift", shift),
    ], f"op {ctx.op.index}: MEAN over axes {sorted(axes)}")
    function = "td_mean_s16" if dtype == "int16" else "td_mean_s8"
    return ctx.lowered(function, (params, ctx.ref(source), ctx.ref(result)))


@lowering("REDUCE_MAX", kernel="reduce")
def lower_reduce_max(ctx: LoweringContext):
    source = ctx.input(0, constant=False)
    result = ctx.output(0)
    if not ctx.same_quantization(source, result):  # TFLM fails the model otherwise
        raise ctx.fail("the output is quantized unlike the input")
    shape, axes, _ = _reduce_shape(ctx, source, result)
    params = ctx.constants.struct(f"op{ctx.op.index}_shape", "td_reduce_shape", shape,
                                  f"op {ctx.op.index}: REDUCE_MAX over axes {sorted(axes)}")
    return ctx.lowered("td_reduce_max_s8", (params, ctx.ref(source), ctx.ref(result)))
