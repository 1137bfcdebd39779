"""HARD_SWISH on int8 (TFLM has no int16 variant): TFLite's 16-bit fixed-point scheme, its two rescales narrowed to
Q15 as its prepare does. The ratios are divided in double precision, as the tflite_micro runtime's are (TFLM's
source divides in single precision first; its SUB, LEAKY_RELU and FULLY_CONNECTED were measured to match double)."""

from __future__ import annotations

import numpy as np

from tinydeploy.engine.ops.common import unary_tensors
from tinydeploy.engine.quant import quantize_multiplier
from tinydeploy.engine.registry import LoweringContext, lowering


def q15(multiplier: int) -> int:
    """A Q31 multiplier rounded to Q15 (TFLite's DownScaleInt32ToInt16Multiplier)."""
    if multiplier >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (multiplier + (1 << 15)) >> 16


@lowering("HARD_SWISH", kernel="hard_swish")
def lower_hard_swish(ctx: LoweringContext):
    source, result = unary_tensors(ctx)
    hires_scale = float(np.float32(ctx.scale(source))) / 128.0  # exact: a power of two
    output_multiplier, output_exponent = quantize_multiplier(hires_scale / float(ctx.scale(result)))
    reluish_multiplier, reluish_exponent = quantize_multiplier(hires_scale / (3.0 / 32768.0))
    if output_exponent > 0:
        raise ctx.fail("the output scale is too small for the input's (TFLite requires a non-positive exponent)")
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_hard_swish_params", [
        ("count", source.elements), ("input_zero_point", ctx.zero_point(source)),
        ("output_zero_point", ctx.zero_point(result)), ("reluish_multiplier", q15(reluish_multiplier)),
        ("reluish_exponent", reluish_exponent), ("output_multiplier", q15(output_multiplier)),
        ("output_exponent", output_exponent),
    ], f"op {ctx.op.index}: HARD_SWISH")
    return ctx.lowered("td_hard_swish_s8", (params, ctx.ref(source), ctx.ref(result)), in_place_of=source.index)
