"""FULLY_CONNECTED: int8 input and weights, int32 bias, per-tensor or per-output-channel weight scales.

With fast kernels (symmetric weights) the int8 weights are laid out here for fully_connected_fast.c (td_dot.h
channels4); each input row is widened into scratch (the op's free space in the plan, else the kernel's stack)."""

from __future__ import annotations

from tinydeploy.engine.ops.common import (BLOCK, bias_input, fully_connected_multipliers, fully_connected_shape,
                                          mat_layer, mat_quant)
from tinydeploy.engine.ops.weighted_s16 import lower_fully_connected_s16
from tinydeploy.engine.quant import activation_range
from tinydeploy.engine.registry import LoweringContext, ScratchRef, lowering, same


@lowering("FULLY_CONNECTED", kernel="fully_connected", dtypes=same("int8", "int16"))
def lower_fully_connected(ctx: LoweringContext):
    if ctx.signature[0] == "int16":
        return lower_fully_connected_s16(ctx)
    op = ctx.op
    source = ctx.input(0, constant=False)
    weights = ctx.input(1, constant=True)
    result = ctx.output(0)
    batches, input_depth, output_depth = fully_connected_shape(ctx, source, weights, result)
    bias = bias_input(ctx, output_depth)

    quant = weights.quant
    if quant is None or len(quant.scales) not in (1, output_depth):
        raise ctx.fail("weights are not quantized per tensor or per output channel")
    per_channel = len(quant.scales) > 1
    if per_channel and (quant.axis != 0 or any(quant.zero_points)):
        raise ctx.fail("per-channel weights must be symmetric along the output axis")
    filter_offset = -(quant.zero_points[0] if quant.zero_points else 0)
    groups = (input_depth + 3) // 4
    if ctx.fast_kernels and filter_offset == 0 and 8 * groups <= ctx.scratch_limit:
        mat = mat_layer(ctx, source, weights, bias, result,
                        weights.values().astype("int64").reshape(output_depth, input_depth), "channels4")
        packed = ctx.constants.array(f"op{op.index}_weights", "int8_t", mat.weights,
                                     f"op {op.index}: weights of tensor {weights.index}, channels4 layout")
        records = ctx.constants.array(f"op{op.index}_records", "int32_t", mat.records,
                                      f"op {op.index}: per output channel bias, shifts, multiplier, round")
        params = ctx.constants.struct(f"op{op.index}_params", "td_fully_connected_fast_params", [
            ("batches", batches), ("input_depth", input_depth), ("output_depth", output_depth),
            ("quant", mat_quant(ctx, source, result, mat.folded)), ("groups", groups), ("weights", packed),
            ("records", records),
        ], f"op {op.index}: FULLY_CONNECTED {op.activation}")
        blocks = f"{output_depth // BLOCK}x4" + (f"+{output_depth % BLOCK}" if output_depth % BLOCK else "")
        variant = f"dsp {blocks} channels" + ("" if mat.folded else ", exact requantization in C")
        return ctx.lowered("td_fully_connected_fast_s8", (params, ctx.ref(source), ScratchRef(optional=True),
                                                          ctx.ref(result)),
                           kernel="fully_connected_fast", variant=variant, scratch_request=8 * groups)
    pairs = fully_connected_multipliers(ctx.scale(source), quant.scales, ctx.scale(result))
    activation_min, activation_max = activation_range(op.activation, ctx.scale(result), ctx.zero_point(result))

    constants = ctx.constants
    multipliers = constants.array(f"op{op.index}_multipliers", "int32_t", [m for m, _ in pairs],
                                  f"op {op.index}: Q31 output multipliers")
    shifts = constants.array(f"op{op.index}_shifts", "int32_t", [s for _, s in pairs],
                             f"op {op.index}: output shifts (power-of-two exponents)")
    params = constants.struct(f"op{op.index}_params", "td_fully_connected_params", [
        ("batches", batches), ("input_depth", input_depth), ("output_depth", output_depth),
        ("input_offset", -ctx.zero_point(source)),
        ("filter_offset", filter_offset),
        ("output_offset", ctx.zero_point(result)),
        ("activation_min", activation_min), ("activation_max", activation_max),
        ("per_channel", per_channel), ("multipliers", multipliers), ("shifts", shifts),
    ], f"op {op.index}: FULLY_CONNECTED {op.activation}")
    bias_arg = constants.tensor(bias, "int32_t") if bias is not None else "NULL"
    return ctx.lowered("td_fully_connected_s8",
                       (params, ctx.ref(source), constants.tensor(weights, "int8_t"), bias_arg, ctx.ref(result)))
