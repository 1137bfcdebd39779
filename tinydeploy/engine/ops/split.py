"""SPLIT and SPLIT_V along a constant axis, of any element type: consecutive pieces copied to each output (split.c).

The pieces' sizes are read from the output tensors' shapes and checked against the input's."""

from __future__ import annotations

from tinydeploy.engine.ops.shapes import elements
from tinydeploy.engine.ops.strided_slice import COPY_DTYPES
from tinydeploy.engine.registry import LoweringContext, RefList, lowering, same


def _lower_split(ctx: LoweringContext, value_position: int, axis_position: int):
    source = ctx.input(value_position, COPY_DTYPES, constant=False)
    rank = len(source.shape)
    axes = ctx.constant_ints(axis_position)
    if len(axes) != 1 or not -rank <= axes[0] < rank:
        raise ctx.fail(f"axis {axes} is not one axis of {rank} dimensions")
    axis = axes[0] % rank
    results = [ctx.output(i, (source.dtype,)) for i in range(len(ctx.op.outputs))]
    chunks, total = [], 0
    for tensor in results:
        shape = [int(d) for d in tensor.shape]
        if len(shape) != rank or shape[:axis] != list(source.shape[:axis]) or \
                shape[axis + 1:] != list(source.shape[axis + 1:]):
            raise ctx.fail(f"output shape {shape} is not a piece of {list(source.shape)} along axis {axis}")
        if tensor.quant and source.quant and not ctx.same_quantization(tensor, source):
            raise ctx.fail(f"output {tensor.name} is quantized unlike the input")
        chunks.append(elements(shape[axis:]) * source.itemsize)
        total += shape[axis]
    if total != source.shape[axis]:
        raise ctx.fail("the outputs' sizes along the axis do not add up to the input's")
    return split_call(ctx, source, results, axis, chunks)


def split_call(ctx: LoweringContext, source, results, axis: int, chunks: list[int]):
    """The call of split.c: `chunks[i]` bytes to output i per index of the dimensions before `axis`, in turn (also
    UNPACK's, whose outputs are the pieces without the axis)."""
    index = ctx.op.index
    params = ctx.constants.struct(f"op{index}_params", "td_split_params", [
        ("outputs", len(results)), ("outer", elements(source.shape[:axis])),
        ("chunks", ctx.constants.array(f"op{index}_chunks", "int32_t", chunks,
                                       f"op {index}: bytes per output and outer index")),
    ], f"op {index}: {ctx.op.op} along axis {axis}")
    outputs = RefList(tuple(ctx.ref(t, "uint8_t") for t in results), "uint8_t", writable=True)
    return ctx.lowered("td_split", (params, ctx.ref(source, "uint8_t"), outputs))


@lowering("SPLIT", kernel="split", dtypes=same(*COPY_DTYPES))
def lower_split(ctx: LoweringContext):
    return _lower_split(ctx, value_position=1, axis_position=0)


@lowering("SPLIT_V", kernel="split", dtypes=same(*COPY_DTYPES))
def lower_split_v(ctx: LoweringContext):
    return _lower_split(ctx, value_position=0, axis_position=2)
