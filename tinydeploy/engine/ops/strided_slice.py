"""STRIDED_SLICE with constant begin, end and strides, of any element type: a strided copy (strided_copy.c).

The start and stop of each axis follow TFLM's kernel (negative indices from the end, clamping, begin/end masks,
shrink-axis); TFLM ignores the ellipsis and new-axis masks and the offset flag, so a model using them is refused."""

from __future__ import annotations

from math import prod

from tinydeploy.engine.ops.shapes import MAX_DIMS, padded, strides
from tinydeploy.engine.registry import LoweringContext, lowering, same

COPY_DTYPES = ("int8", "int16", "int32", "float32")


def _clamp(value: int, low: int, high: int) -> int:
    return high if value > high else low if value < low else value


def axis_range(size: int, begin: int, end: int, stride: int, begin_masked: bool, end_masked: bool,
               shrink: bool) -> tuple[int, int]:
    """(start, stop) of one axis, as TFLM's StridedSlice computes them."""
    start = begin + size if begin < 0 else begin
    start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
    if begin_masked:
        start = 0 if stride > 0 else size - 1
    if shrink:
        return start, start if start >= size else start + 1
    stop = end + size if end < 0 else end
    stop = _clamp(stop, 0, size) if stride > 0 else _clamp(stop, -1, size - 1)
    if end_masked:
        stop = size if stride > 0 else -1
    return start, stop


def strided_copy_params(ctx: LoweringContext, dims: list[int], steps: list[int], start: int, element_bytes: int,
                        comment: str) -> str:
    return ctx.constants.struct(f"op{ctx.op.index}_params", "td_strided_copy_params", [
        ("dims", padded(dims)), ("steps", padded(steps, fill=0)), ("start", start),
        ("element_bytes", element_bytes),
    ], comment)


@lowering("STRIDED_SLICE", kernel="strided_copy", dtypes=same(*COPY_DTYPES))
def lower_strided_slice(ctx: LoweringContext):
    source = ctx.input(0, COPY_DTYPES, constant=False)
    result = ctx.output(0, (source.dtype,))
    options = ctx.op.options
    if options.get("ellipsisMask", 0) or options.get("newAxisMask", 0) or options.get("offset", False):
        raise ctx.fail("ellipsis and new-axis masks and the offset flag are not supported (TFLM ignores them)")
    if source.quant and result.quant and not ctx.same_quantization(source, result):
        raise ctx.fail("input and output quantization differ")
    rank = len(source.shape)
    if rank > MAX_DIMS:
        raise ctx.fail(f"{rank} dimensions (at most {MAX_DIMS})")
    begin, end, step = (ctx.input(i, ("int32",), constant=True).values().reshape(-1).tolist() for i in (1, 2, 3))
    if not len(begin) == len(end) == len(step) == rank:
        raise ctx.fail(f"begin, end and strides must have {rank} values each")
    if 0 in step:
        raise ctx.fail("a stride is 0")
    masks = (options.get("beginMask", 0), options.get("endMask", 0), options.get("shrinkAxisMask", 0))
    input_strides = strides([int(d) for d in source.shape])
    dims, steps, kept, start_element = [], [], [], 0
    for axis, size in enumerate(int(d) for d in source.shape):
        first, stop = axis_range(size, int(begin[axis]), int(end[axis]), int(step[axis]),
                                 *(bool(mask >> axis & 1) for mask in masks))
        count = len(range(first, stop, int(step[axis])))
        dims.append(count)
        steps.append(int(step[axis]) * input_strides[axis])
        start_element += first * input_strides[axis]
        if not masks[2] >> axis & 1:
            kept.append(count)
    if kept != [int(d) for d in result.shape]:
        raise ctx.fail(f"output shape {list(result.shape)} does not follow from the slice (expected {kept})")
    if prod(dims) == 0:
        start_element = 0
    params = strided_copy_params(ctx, dims, steps, start_element, source.itemsize,
                                 f"op {ctx.op.index}: STRIDED_SLICE {source.dtype}")
    # Positive strides read each element at or after where it is written: the output may start over the input.
    in_place = source.index if all(s > 0 for s in step) else None
    return ctx.lowered("td_strided_copy", (params, ctx.ref(source), ctx.ref(result)), in_place_of=in_place)
