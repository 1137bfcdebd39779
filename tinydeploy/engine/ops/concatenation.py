"""CONCATENATION of int8 or int16 tensors quantized like the output (TFLM requires it): a copy of bytes, no
arithmetic."""

from __future__ import annotations

from tinydeploy.engine.ops.shapes import elements
from tinydeploy.engine.registry import LoweringContext, RefList, lowering, same
from tinydeploy.golden import TFLM_MAX_CONCATENATION_INPUTS


@lowering("CONCATENATION", kernel="concatenation", dtypes=same("int8", "int16"))
def lower_concatenation(ctx: LoweringContext):
    dtype = ctx.signature[1]
    result = ctx.output(0, (dtype,))
    rank = len(result.shape)
    axis = int(ctx.op.options.get("axis", 0))
    if not -rank <= axis < rank:
        raise ctx.fail(f"axis {axis} is out of range for {rank} dimensions")
    axis %= rank
    if ctx.op.activation != "NONE":
        raise ctx.fail(f"fused activation {ctx.op.activation} is not supported")
    sources = [ctx.input(i, (dtype,)) for i in range(len(ctx.op.inputs))]
    if not sources:
        raise ctx.fail("no inputs")
    if len(sources) > TFLM_MAX_CONCATENATION_INPUTS:  # TFLM, the reference flash checks against, cannot run it
        raise ctx.fail(f"{len(sources)} inputs, and TFLM's CONCATENATION takes at most "
                       f"{TFLM_MAX_CONCATENATION_INPUTS} (concatenate at most {TFLM_MAX_CONCATENATION_INPUTS} at a "
                       "time, then the results)")
    chunks, axis_total = [], 0
    for tensor in sources:
        shape = list(tensor.shape)
        if len(shape) != rank or shape[:axis] != list(result.shape[:axis]) or \
                shape[axis + 1:] != list(result.shape[axis + 1:]):
            raise ctx.fail(f"input shape {shape} does not concatenate into {list(result.shape)} along axis {axis}")
        if not ctx.same_quantization(tensor, result):
            raise ctx.fail(f"input {tensor.name} is quantized unlike the output")
        chunks.append(elements(shape[axis:]) * result.itemsize)
        axis_total += int(shape[axis])
    if axis_total != result.shape[axis]:
        raise ctx.fail("the inputs' sizes along the axis do not add up to the output's")
    return concatenation_call(ctx, sources, result, axis, chunks)


def concatenation_call(ctx: LoweringContext, sources, result, axis: int, chunks: list[int]):
    """The call of concatenation.c: `chunks[i]` bytes of input i per index of the dimensions before `axis`, in turn
    (also PACK's, whose inputs are the pieces with a 1-wide axis)."""
    chunk_array = ctx.constants.array(f"op{ctx.op.index}_chunks", "int32_t", chunks,
                                      f"op {ctx.op.index}: bytes per input and outer index")
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_concatenation_params", [
        ("inputs", len(sources)), ("outer", elements(result.shape[:axis])), ("chunks", chunk_array),
    ], f"op {ctx.op.index}: {ctx.op.op} along axis {axis}")
    pointers = RefList(tuple(ctx.constants.raw_bytes(t) if t.is_constant else ctx.ref(t, "int8_t") for t in sources))
    return ctx.lowered("td_concatenation_s8", (params, pointers, ctx.ref(result, "int8_t")))
