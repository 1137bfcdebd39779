"""TRANSPOSE_CONV as TFLM computes it: int8 (int32 bias) or int16x8 (int64 or int16 bias, zero points 0),
per-tensor or per-output-channel weight scales, SAME or VALID padding derived from the output size, fused
activation as a clamp."""

from __future__ import annotations

import numpy as np

from tinydeploy.engine.ops.common import leading_padding, output_size
from tinydeploy.engine.quant import activation_range, quantize_multiplier, quantize_multiplier_wide
from tinydeploy.engine.registry import LoweringContext, lowering, same

OUTPUT_SHAPE, WEIGHTS, INPUT, BIAS = 0, 1, 2, 3
LIMITS = {"int8": (-128, 127), "int16": (-32768, 32767)}


@lowering("TRANSPOSE_CONV", kernel="transpose_conv", dtypes=same("int8", "int16"))
def lower_transpose_conv(ctx: LoweringContext):
    op = ctx.op
    source = ctx.input(INPUT, ("int8", "int16"), constant=False)
    wide = source.dtype == "int16"
    weights = ctx.input(WEIGHTS, ("int8",), constant=True)
    bias = ctx.optional_input(BIAS, ("int64", "int16") if wide else ("int32",), constant=True)
    result = ctx.output(0, (source.dtype,))
    declared = ctx.constant_ints(OUTPUT_SHAPE)
    if len(source.shape) != 4 or len(weights.shape) != 4 or len(result.shape) != 4:
        raise ctx.fail(f"expected 4-D input, weights and output, got {list(source.shape)}, {list(weights.shape)}, "
                       f"{list(result.shape)}")
    if declared != list(result.shape):
        raise ctx.fail(f"output shape input {declared} differs from the output tensor's {list(result.shape)}")
    batches, in_h, in_w, in_d = source.shape
    out_b, out_h, out_w, out_d = result.shape
    channels, filter_h, filter_w, filter_d = weights.shape
    if out_b != batches or channels != out_d or filter_d != in_d:
        raise ctx.fail(f"weights {list(weights.shape)} do not map input {list(source.shape)} to output "
                       f"{list(result.shape)}")
    stride_h, stride_w = op.options.get("strideH", 1), op.options.get("strideW", 1)
    if min(stride_h, stride_w) < 1:
        raise ctx.fail("strides must be positive")
    if bias is not None and bias.elements != out_d:
        raise ctx.fail(f"bias has {bias.elements} values, expected {out_d}")
    quant = weights.quant
    if quant is None or len(quant.scales) not in (1, out_d) or (len(quant.scales) > 1 and quant.axis != 0):
        raise ctx.fail("weights are not quantized per tensor or per output channel (axis 0)")
    if any(quant.zero_points):
        raise ctx.fail("weights must be symmetric (zero point 0)")
    if wide and (ctx.zero_point(source) or ctx.zero_point(result)):
        raise ctx.fail("int16 activations must be symmetric (zero point 0)")
    # TFLM computes the padding as for a convolution from the output back to the input: its "input" is our output.
    pads = []
    for size, filter_size, stride in ((out_h, filter_h, stride_h), (out_w, filter_w, stride_w)):
        forward = output_size(op.padding, size, filter_size, stride, 1)
        pads.append(leading_padding(size, filter_size, stride, 1, forward))
    # Per channel, in double: input scale x weight scale / output scale.
    input_scale, output_scale = float(ctx.scale(source)), float(ctx.scale(result))
    scales = list(quant.scales) * (out_d if len(quant.scales) == 1 else 1)
    requantize = quantize_multiplier_wide if wide else quantize_multiplier
    pairs = [requantize(input_scale * float(s) / output_scale) for s in scales]
    low, high = activation_range(op.activation, ctx.scale(result), ctx.zero_point(result), *LIMITS[source.dtype])
    constants = ctx.constants
    index = op.index
    multipliers = constants.array(f"op{index}_multipliers", "int32_t", [m for m, _ in pairs],
                                  f"op {index}: Q31 output multipliers")
    shifts = constants.array(f"op{index}_shifts", "int32_t", [s for _, s in pairs],
                             f"op {index}: output shifts (power-of-two exponents)")
    bias32 = bias64 = "NULL"
    if bias is not None and wide:  # an int16 bias is widened as TFLM widens it at every invoke
        bias64 = constants.array(f"op{index}_bias64", "int64_t", bias.values().reshape(-1).astype(np.int64),
                                 f"op {index}: bias of tensor {bias.index} as int64")
    elif bias is not None:
        bias32 = constants.tensor(bias, "int32_t")
    params = constants.struct(f"op{index}_params", "td_transpose_conv_params", [
        ("batches", batches), ("input_height", in_h), ("input_width", in_w), ("input_depth", in_d),
        ("output_height", out_h), ("output_width", out_w), ("output_depth", out_d),
        ("filter_height", filter_h), ("filter_width", filter_w), ("stride_height", stride_h),
        ("stride_width", stride_w), ("pad_top", pads[0]), ("pad_left", pads[1]),
        ("input_offset", -ctx.zero_point(source)), ("output_offset", ctx.zero_point(result)),
        ("activation_min", low), ("activation_max", high), ("multipliers", multipliers), ("shifts", shifts),
        ("filter", constants.tensor(weights, "int8_t")), ("bias", bias32), ("bias64", bias64),
    ], f"op {index}: TRANSPOSE_CONV {op.padding} stride {stride_h}x{stride_w} {op.activation}")
    return ctx.lowered("td_transpose_conv_s16" if wide else "td_transpose_conv_s8",
                       (params, ctx.ref(source), ctx.ref(result)), variant="int16x8" if wide else "reference")
