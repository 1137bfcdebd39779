"""The int16x8 variants of the weighted ops (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED): int16 activations with
zero point 0, symmetric int8 weights, an int64 bias and 64-bit accumulators (or an int32 bias and 32-bit ones, as
the model's bias type says), TFLite's int16 reference arithmetic. Called by each op's lowering for int16 tensors;
the reference kernels are firmware/engine/<op>_s16.c."""

from __future__ import annotations

from tinydeploy.engine.ops.common import _requant_arrays, window
from tinydeploy.engine.quant import (INT16_MAX, INT16_MIN, WIDE_MAX_SHIFT, activation_range, quantize_multiplier,
                                     quantize_multiplier_wide)
from tinydeploy.engine.registry import LoweringContext, c_struct
from tinydeploy.model.tflite import Tensor

INT32_BIAS_TYPE = 2  # TensorType INT32 in the options' quantizedBiasType


def symmetric(ctx: LoweringContext, *tensors: Tensor) -> None:
    """int16 tensors must be symmetric (zero point 0), as TFLite's int16 kernels assume."""
    for tensor in tensors:
        if ctx.zero_point(tensor) != 0:
            raise ctx.fail(f"int16 tensor {tensor.name} has zero point {ctx.zero_point(tensor)}; TFLite's int16x8 "
                           "scheme needs 0")


def bias_and_accumulator(ctx: LoweringContext, channels: int, allow_int32: bool = True) -> tuple[str, bool]:
    """The bias argument and whether the kernel accumulates in 32 bits (an int32 bias, or none with quantizedBiasType
    INT32), as TFLite picks its accumulator."""
    bias = ctx.optional_input(2, ("int64", "int32") if allow_int32 else ("int64",), constant=True)
    if bias is not None and bias.elements != channels:
        raise ctx.fail(f"bias has {bias.elements} values, expected {channels}")
    acc32 = (bias is not None and bias.dtype == "int32") or \
        (bias is None and allow_int32 and ctx.op.options.get("quantizedBiasType", 0) == INT32_BIAS_TYPE)
    if bias is None:
        return "NULL", acc32
    return ctx.constants.tensor(bias, "int32_t" if bias.dtype == "int32" else "int64_t"), acc32


def requant(ctx: LoweringContext, source: Tensor, weights: Tensor, result: Tensor, channels: int, axis: int,
            wide: bool) -> str:
    """The td_requant initializer; `wide` (a 64-bit accumulator) refuses shifts TFLM's 64-bit rescale does not take."""
    multipliers, shifts, per_channel = _requant_arrays(ctx, source, weights, result, channels, axis)
    if wide and weights.quant is not None:
        for scale in weights.quant.scales:
            quantize_multiplier_wide(float(ctx.scale(source)) * float(scale) / float(ctx.scale(result)))
    low, high = activation_range(ctx.op.activation, ctx.scale(result), 0, INT16_MIN, INT16_MAX)
    return c_struct([("input_offset", 0), ("output_offset", 0), ("activation_min", low), ("activation_max", high),
                     ("per_channel", per_channel), ("multipliers", multipliers), ("shifts", shifts)])


def lower_conv_2d_s16(ctx: LoweringContext):
    source = ctx.input(0, ("int16",), constant=False)
    weights = ctx.input(1, ("int8",), constant=True)
    result = ctx.output(0, ("int16",))
    symmetric(ctx, source, result)
    if len(weights.shape) != 4:
        raise ctx.fail(f"weights have shape {list(weights.shape)}, expected [out, height, width, in]")
    out_depth, filter_h, filter_w, filter_in = weights.shape
    if len(source.shape) == 4 and source.shape[3] != filter_in:
        raise ctx.fail("grouped convolutions are not supported")
    if result.shape[-1] != out_depth:
        raise ctx.fail("output channels and weights disagree")
    bias, acc32 = bias_and_accumulator(ctx, out_depth)
    index = ctx.op.index
    params = ctx.constants.struct(f"op{index}_params", "td_conv_2d_params", [
        ("window", window(ctx, source, result, filter_h, filter_w)),
        ("requant", requant(ctx, source, weights, result, out_depth, 0, wide=not acc32)),
    ], f"op {index}: CONV_2D int16x8 {ctx.op.padding} {ctx.op.activation}")
    function = "td_conv_2d_s16_acc32" if acc32 else "td_conv_2d_s16"
    return ctx.lowered(function, (params, ctx.ref(source), ctx.constants.tensor(weights, "int8_t"), bias,
                                  ctx.ref(result)), kernel="conv_2d_s16", variant="reference int16x8")


def lower_depthwise_conv_2d_s16(ctx: LoweringContext):
    source = ctx.input(0, ("int16",), constant=False)
    weights = ctx.input(1, ("int8",), constant=True)
    result = ctx.output(0, ("int16",))
    symmetric(ctx, source, result)
    if len(weights.shape) != 4 or weights.shape[0] != 1 or len(source.shape) != 4:
        raise ctx.fail(f"weights have shape {list(weights.shape)}, expected [1, height, width, channels]")
    _, filter_h, filter_w, out_depth = weights.shape
    in_depth = source.shape[3]
    if in_depth == 0 or out_depth % in_depth or result.shape[-1] != out_depth:
        raise ctx.fail(f"{out_depth} output channels are not a multiple of {in_depth} input channels")
    bias, _ = bias_and_accumulator(ctx, out_depth, allow_int32=False)  # TFLite's int16 depthwise takes int64 only
    index = ctx.op.index
    params = ctx.constants.struct(f"op{index}_params", "td_depthwise_conv_2d_params", [
        ("window", window(ctx, source, result, filter_h, filter_w)), ("depth_multiplier", out_depth // in_depth),
        ("requant", requant(ctx, source, weights, result, out_depth, 3, wide=True)),
    ], f"op {index}: DEPTHWISE_CONV_2D int16x8 {ctx.op.padding} {ctx.op.activation}")
    return ctx.lowered("td_depthwise_conv_2d_s16", (params, ctx.ref(source), ctx.constants.tensor(weights, "int8_t"),
                                                    bias, ctx.ref(result)),
                       kernel="depthwise_conv_2d_s16", variant="reference int16x8")


def fully_connected_multipliers(input_scale: float, weight_scales, output_scale: float) -> list[tuple[int, int]]:
    """FULLY_CONNECTED's rescale input * weight / output in double precision, per channel or per tensor. (TFLM's
    source rounds the per-tensor product to single precision first; the tflite_micro runtime's outputs match the
    double product, measured on an int16x8 layer whose two multipliers round apart.)"""
    return [quantize_multiplier(float(input_scale) * float(s) / float(output_scale)) for s in weight_scales]


def lower_fully_connected_s16(ctx: LoweringContext):
    op = ctx.op
    source = ctx.input(0, ("int16",), constant=False)
    weights = ctx.input(1, ("int8",), constant=True)
    result = ctx.output(0, ("int16",))
    symmetric(ctx, source, result)
    if op.options.get("weightsFormat", 0) != 0:
        raise ctx.fail("shuffled weight formats are not supported")
    if len(weights.shape) != 2:
        raise ctx.fail(f"weights have shape {list(weights.shape)}, expected [outputs, inputs]")
    output_depth, input_depth = weights.shape
    if input_depth == 0 or source.elements % input_depth:
        raise ctx.fail(f"input of {source.elements} values is not a whole number of rows of {input_depth}")
    batches = source.elements // input_depth
    if result.elements != batches * output_depth:
        raise ctx.fail(f"output has {result.elements} values, expected {batches} x {output_depth}")
    quant = weights.quant
    if quant is None or len(quant.scales) not in (1, output_depth) or any(quant.zero_points):
        raise ctx.fail("weights are not symmetric and quantized per tensor or per output channel")
    if len(quant.scales) > 1 and quant.axis != 0:
        raise ctx.fail(f"per-channel weights are quantized along axis {quant.axis}, expected 0")
    bias, acc32 = bias_and_accumulator(ctx, output_depth)
    pairs = fully_connected_multipliers(ctx.scale(source), quant.scales, ctx.scale(result))
    if not acc32 and max(shift for _, shift in pairs) > WIDE_MAX_SHIFT:
        raise ctx.fail(f"a rescale of 2^{max(s for _, s in pairs)} is beyond TFLM's 64-bit arithmetic (at most "
                       f"2^{WIDE_MAX_SHIFT}); the model's quantization scales are broken")
    low, high = activation_range(op.activation, ctx.scale(result), 0, INT16_MIN, INT16_MAX)
    index = op.index
    params = ctx.constants.struct(f"op{index}_params", "td_fully_connected_params", [
        ("batches", batches), ("input_depth", input_depth), ("output_depth", output_depth),
        ("input_offset", 0), ("filter_offset", 0), ("output_offset", 0),
        ("activation_min", low), ("activation_max", high), ("per_channel", len(pairs) > 1),
        ("multipliers", ctx.constants.array(f"op{index}_multipliers", "int32_t", [m for m, _ in pairs],
                                            f"op {index}: Q31 output multipliers")),
        ("shifts", ctx.constants.array(f"op{index}_shifts", "int32_t", [s for _, s in pairs],
                                       f"op {index}: output shifts (power-of-two exponents)")),
    ], f"op {index}: FULLY_CONNECTED int16x8 {op.activation}")
    function = "td_fully_connected_s16_acc32" if acc32 else "td_fully_connected_s16"
    return ctx.lowered(function, (params, ctx.ref(source), ctx.constants.tensor(weights, "int8_t"), bias,
                                  ctx.ref(result)), kernel="fully_connected_s16", variant="reference int16x8")
