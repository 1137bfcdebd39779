"""PACK and UNPACK of int8 or int16 tensors along a new (PACK) or removed (UNPACK) axis: pure data movement,
as unrolled Keras LSTM/GRU layers make them. PACK is a concatenation of its inputs, each seen with a 1-wide axis
inserted, and runs concatenation.c; UNPACK is a split into 1-wide pieces and runs split.c; an UNPACK into one
piece only reshapes: a view, no code runs (the converter already makes a one-input PACK a RESHAPE)."""

from __future__ import annotations

from tinydeploy.engine.ops.shapes import elements
from tinydeploy.engine.registry import LoweringContext, RefList, lowering, same
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
    chunk_array = ctx.constants.array(f"op{ctx.op.index}_chunks", "int32_t", [chunk] * len(sources),
                                      f"op {ctx.op.index}: bytes per input and outer index")
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_concatenation_params", [
        ("inputs", len(sources)), ("outer", elements(result.shape[:axis])), ("chunks", chunk_array),
    ], f"op {ctx.op.index}: PACK along axis {axis}")
    pointers = RefList(tuple(ctx.constants.raw_bytes(t) if t.is_constant else ctx.ref(t, "int8_t") for t in sources))
    return ctx.lowered("td_concatenation_s8", (params, pointers, ctx.ref(result, "int8_t")))


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
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_split_params", [
        ("outputs", len(results)), ("outer", elements(source.shape[:axis])),
        ("chunks", ctx.constants.array(f"op{ctx.op.index}_chunks", "int32_t", [chunk] * len(results),
                                       f"op {ctx.op.index}: bytes per output and outer index")),
    ], f"op {ctx.op.index}: UNPACK along axis {axis}")
    outputs = RefList(tuple(ctx.ref(t, "uint8_t") for t in results), "uint8_t", writable=True)
    return ctx.lowered("td_split", (params, ctx.ref(source, "uint8_t"), outputs))
