"""RESIZE_NEAREST_NEIGHBOR of an NHWC tensor of any element type to a constant size: the source row and column of
each output row and column computed here in single precision as TFLM does, the kernel copies pixels."""

from __future__ import annotations

import math

import numpy as np

from tinydeploy.engine.ops.strided_slice import COPY_DTYPES
from tinydeploy.engine.quant import round_half_away
from tinydeploy.engine.registry import LoweringContext, lowering, same


def nearest_sources(input_size: int, output_size: int, align_corners: bool, half_pixel_centers: bool) -> list[int]:
    """The input index each output index copies (TFLM's GetNearestNeighbor, float32 arithmetic)."""
    one = np.float32
    if align_corners and output_size > 1:
        scale = one(input_size - 1) / one(output_size - 1)
    else:
        scale = one(input_size) / one(output_size)
    offset = one(0.5) if half_pixel_centers else one(0.0)
    sources = []
    for position in range(output_size):
        value = (one(position) + offset) * scale
        index = round_half_away(float(value)) if align_corners else math.floor(float(value))
        index = min(index, input_size - 1)
        sources.append(max(0, index) if half_pixel_centers else index)
    return sources


@lowering("RESIZE_NEAREST_NEIGHBOR", kernel="resize_nearest_neighbor", dtypes=same(*COPY_DTYPES))
def lower_resize_nearest_neighbor(ctx: LoweringContext):
    source = ctx.input(0, COPY_DTYPES, constant=False)
    result = ctx.output(0, (source.dtype,))
    if len(source.shape) != 4 or len(result.shape) != 4:
        raise ctx.fail(f"expected 4-D NHWC tensors, got {list(source.shape)} -> {list(result.shape)}")
    size = ctx.constant_ints(1)
    batches, in_h, in_w, depth = (int(d) for d in source.shape)
    if len(size) != 2 or [batches, *size, depth] != [int(d) for d in result.shape]:
        raise ctx.fail(f"output shape {list(result.shape)} does not follow from size {size}")
    if source.quant and result.quant and not ctx.same_quantization(source, result):
        raise ctx.fail("input and output quantization differ")
    if min(size) < 1 or min(in_h, in_w) < 1:
        raise ctx.fail("empty images")
    align, half = (bool(ctx.op.options.get(k, False)) for k in ("alignCorners", "halfPixelCenters"))
    rows = nearest_sources(in_h, size[0], align, half)
    columns = nearest_sources(in_w, size[1], align, half)
    if min(rows + columns) < 0:
        raise ctx.fail("a source row or column is outside the input")
    index = ctx.op.index
    params = ctx.constants.struct(f"op{index}_params", "td_resize_nearest_neighbor_params", [
        ("batches", batches), ("input_height", in_h), ("input_width", in_w), ("output_height", size[0]),
        ("output_width", size[1]), ("pixel_bytes", depth * source.itemsize),
        ("rows", ctx.constants.array(f"op{index}_rows", "int32_t", rows, f"op {index}: source row per output row")),
        ("columns", ctx.constants.array(f"op{index}_columns", "int32_t", columns,
                                        f"op {index}: source column per output column")),
    ], f"op {index}: RESIZE_NEAREST_NEIGHBOR{' align_corners' if align else ''}"
       f"{' half_pixel_centers' if half else ''}")
    return ctx.lowered("td_resize_nearest_neighbor", (params, ctx.ref(source, "uint8_t"), ctx.ref(result, "uint8_t")))
