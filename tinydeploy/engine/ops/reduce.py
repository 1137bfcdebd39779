"""MEAN of an int8 tensor over constant axes: integer sums, one rescale with the division folded in."""

from __future__ import annotations

import numpy as np

from tinydeploy.engine.ops.shapes import MAX_DIMS, padded, strides
from tinydeploy.engine.quant import quantize_multiplier
from tinydeploy.engine.registry import LoweringContext, lowering


def mean_multiplier(real_scale: float, count: int) -> tuple[int, int]:
    """The rescale input scale / output scale with the division by `count` folded in, as the reference does:
    the Q31 multiplier shifted up by floor(log2(count)) (at most 32, keeping the shift >= -31), divided by count
    with truncation."""
    multiplier, shift = quantize_multiplier(real_scale)
    extra = max(min(count.bit_length() - 1, 32, 31 + shift), 0)
    return (multiplier << extra) // count, shift - extra


@lowering("MEAN", kernel="reduce")
def lower_mean(ctx: LoweringContext):
    source = ctx.input(0, constant=False)
    result = ctx.output(0)
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
    multiplier, shift = mean_multiplier(float(ctx.scale(source)) / float(ctx.scale(result)), count)
    input_dims = padded(source.shape)
    offset = MAX_DIMS - rank
    reduced = [int(n) if d - offset in axes else 1 for d, n in enumerate(input_dims)]
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_mean_params", [
        ("input_strides", strides(input_dims)), ("kept_dims", padded(kept)), ("reduced_dims", reduced),
        ("count", count), ("input_zero_point", ctx.zero_point(source)),
        ("output_zero_point", ctx.zero_point(result)), ("multiplier", multiplier), ("shift", shift),
    ], f"op {ctx.op.index}: MEAN over axes {sorted(axes)}")
    return ctx.lowered("td_mean_s8", (params, ctx.ref(source), ctx.ref(result)))
