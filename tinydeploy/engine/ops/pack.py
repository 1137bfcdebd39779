"""PACK and UNPACK of int8 or int16 tensors along a new (PACK) or removed (UNPACK) axis: pure data movement,
as unrolled Keras LSTM/GRU layers make them. PACK is a concatenation of its inputs, each seen with a 1-wide axis
inserted, and runs concatenation.c; UNPACK is a split into 1-wide pieces and runs split.c; an UNPACK into one
piece only reshapes: a view, no code runs (the converter already makes a one-input PACK a RESHAPE)."""

from __future__ import annotations

from tinydeploy.engine.ops.concatenation import concatenation_call
from tinydeploy.engine.ops.shapes import elements
from tinydeploy.engine.ops.split import split_call
from tinydeploy.engine.registry import LoweringContext, lowering, same
from tinydeploy.model.tflite import Tensor

PACK_DTYPES = ("int8", "int16")


def _check_piece(ctx: LoweringContext, piece: Tensor, whole: Tensor, axis: int) -> None:
    """`piece` is `whole` without its axis `axis`, quantized alike."""
    expected = [int(n) for d, n in enumerate(whole.shape) if d != axis]
    if [int(n) for n in piece.shape] != expected:
        raise ctx.fail(f"{piece.name} has shape {list(piece.shape)}, not {expected} ({list(whole.shape)} without "
                       f"axis {axis})")
    if piece.quant and whole.quant and not ctx.same_quantization(piece, whole):
        raise ctx.fail(f"{piece.name} is quantized unlike {whole.name}")


def _axis(ctx: LoweringContext, rank: int) -> int:
    axis = int(ctx.op.options.get("axis", 0))
    if not -rank <= axis < rank:
        raise ctx.fail(f"axis {axis} is out of range for {rank} dimensions")
    return axis % rank


@lowering("PACK", kernel="concatenation", dtypes=same(*PACK_DTYPES))
def lower_pack(ctx: LoweringContext):
    dtype = ctx.signature[1]
    result = ctx.output(0, (dtype,))
    axis = _axis(ctx, len(result.shape))
    sources = [ctx.input(i, (dtype,)) for i in range(len(ctx.op.inputs))]
    if not sources or len(sources) != int(ctx.op.options.get("valuesCount", len(sources))) or \
            len(sources) != result.shape[axis]:
        raise ctx.fail(f"{len(sources)} inputs do not stack into {list(result.shape)} along axis {axis}")
    for tensor in sources:
        _check_piece(ctx, tensor, result, axis)
    chunk = elements(result.shape[axis + 1:]) * result.itemsize
    return concatenation_call(ctx, sources, result, axis, [chunk] * len(sources))


@lowering("UNPACK", kernel="split", dtypes=same(*PACK_DTYPES))
def lower_unpack(ctx: LoweringContext):
    dtype = ctx.signature[0]
    source = ctx.input(0, (dtype,), constant=False)
    axis = _axis(ctx, len(source.shape))
    results = [ctx.output(i, (dtype,)) for i in range(len(ctx.op.outputs))]
    if not results or len(results) != int(ctx.op.options.get("num", len(results))) or \
            len(results) != source.shape[axis]:
        raise ctx.fail(f"{len(results)} outputs do not unstack {list(source.shape)} along axis {axis}")
    for tensor in results:
        _check_piece(ctx, tensor, source, axis)
    if len(results) == 1:
        return ctx.lowered(None, view_of=source.index)
    chunk = elements(source.shape[axis + 1:]) * source.itemsize
    return split_call(ctx, source, results, axis, [chunk] * len(results))
