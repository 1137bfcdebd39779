"""TRANSPOSE by a constant permutation, of any element type: a strided copy with the input's steps permuted."""

from __future__ import annotations

from tinydeploy.engine.ops.shapes import MAX_DIMS, strides
from tinydeploy.engine.ops.strided_slice import COPY_DTYPES, strided_copy_params
from tinydeploy.engine.registry import LoweringContext, lowering, same


@lowering("TRANSPOSE", kernel="strided_copy", dtypes=same(*COPY_DTYPES))
def lower_transpose(ctx: LoweringContext):
    source = ctx.input(0, COPY_DTYPES, constant=False)
    result = ctx.output(0, (source.dtype,))
    rank = len(source.shape)
    if rank > MAX_DIMS:
        raise ctx.fail(f"{rank} dimensions (at most {MAX_DIMS})")
    permutation = ctx.constant_ints(1)
    if sorted(p % rank if rank else p for p in permutation) != list(range(rank)):
        raise ctx.fail(f"{permutation} is not a permutation of {rank} axes")
    permutation = [p % rank for p in permutation]
    shape = [int(source.shape[p]) for p in permutation]
    if shape != [int(d) for d in result.shape]:
        raise ctx.fail(f"output shape {list(result.shape)} does not follow from permutation {permutation}")
    input_strides = strides([int(d) for d in source.shape])
    params = strided_copy_params(ctx, shape, [input_strides[p] for p in permutation], 0, source.itemsize,
                                 f"op {ctx.op.index}: TRANSPOSE {permutation} {source.dtype}")
    return ctx.lowered("td_strided_copy", (params, ctx.ref(source), ctx.ref(result)))
