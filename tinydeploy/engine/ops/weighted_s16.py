"""The int16x8 variants of the weighted ops (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED): int16 activations with
zero point 0, symmetric int8 weights, an int64 bias and 64-bit accumulators (or an int32 bias and 32-bit ones, as
the model's bias type says), TFLite's int16 reference arithmetic. Called by each op's lowering for int16 tensors;
the reference kernels are firmware/engine/<op>_s16.c."""

from __future__ import annotations

from tinydeploy.engine.ops.common import (_requant_arrays, bias_input, conv_2d_shape, depthwise_conv_2d_shape,
                                          fully_connected_multipliers, fully_connected_shape, symmetric,
                                          window)
from tinydeploy.engine.quant import INT16_MAX, INT16_MIN, WIDE_MAX_SHIFT, activation_range, quantize_multiplier_wide
from tinydeploy.engine.registry import LoweringContext, c_struct
from tinydeploy.model.tflite import Tensor

INT32_BIAS_TYPE = 2  # TensorType INT32 in the options' quantizedBiasType


def int16x8_tensors(ctx: LoweringContext) -> tuple[Tensor, Tensor, Tensor]:
    """A weighted op's symmetric int16 input, constant int8 weights and symmetric int16 output."""
    source = ctx.input(0, ("int16",), constant=False)
    weights = ctx.input(1, ("int8",), constant=True)
    result = ctx.output(0, ("int16",))
    symmetric(ctx, source, result)
    return source, weights, result


def bias_and_accumulator(ctx: LoweringContext, channels: int, allow_int32: bool = True) -> tuple[str, bool]:
    """The bias argument and whether the kernel accumulates in 32 bits (an int32 bias, or none with quantizedBiasType
    INT32), as TFLite picks its accumulator."""
    bias = bias_input(ctx, channels, ("int64", "int32") if allow_int32 else ("int64",))
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
    source, weights, result = int16x8_tensors(ctx)
    out_depth, filter_h, filter_w, _ = conv_2d_shape(ctx, source, weights, result)
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
    source, weights, result = int16x8_tensors(ctx)
    filter_h, filter_w, out_depth, in_depth = depthwise_conv_2d_shape(ctx, source, weights, result)
    bias, _ = bias_and_accumulator(ctx, out_depth, allow_int32=False)  # TFLite's int16 depthwise takes int64 only
    index = ctx.op.index
    params = ctx.constants.struct(f"op{index}_params", "td_depthwise_conv_2d_params", [
        ("window", window(ctx, source, result, filter_h, filter_w)), ("depth_multiplier", out_depth // in_depth),
        ("requant", requant(ctx, source, weights, result, out_depth, 3, wide=True)),
    ], f"op {index}: DEPTHWISE_CONV_2D int16x8 {ctx.op.padding} {ctx.op.activation}")
    return ctx.lowered("td_depthwise_conv_2d_s16", (params, ctx.ref(source), ctx.constants.tensor(weights, "int8_t"),
                                                    bias, ctx.ref(result)),
                       kernel="depthwise_conv_2d_s16", variant="reference int16x8")


def lower_fully_connected_s16(ctx: LoweringContext):
    op = ctx.op
    source, weights, result = int16x8_tensors(ctx)
    batches, input_depth, output_depth = fully_connected_shape(ctx, source, weights, result)
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
