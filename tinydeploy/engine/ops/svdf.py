"""SVDF, integer, as TFLM's kernel computes it: int8 input, feature weights and output, int8 or int16 time weights
and activation state (a variable tensor the planner keeps for the whole program), int32 bias. TFLM's integer SVDF
clamps to int8 without applying the fused activation; so does this one."""

from __future__ import annotations

import numpy as np

from tinydeploy.engine.quant import quantize_multiplier
from tinydeploy.engine.registry import LoweringContext, lowering

INPUT, FEATURE_WEIGHTS, TIME_WEIGHTS, BIAS, STATE = 0, 1, 2, 3, 4
BIAS_SCALE_TOLERANCE = 1e-5  # TFLM's Prepare refuses a bias scale further than this from state x time scales


def float32_scale(a: float, b: float, c: float) -> float:
    """a * b / c evaluated in float32 (C++ float arithmetic on three scales), then widened."""
    return float(np.float32(np.float32(a) * np.float32(b)) / np.float32(c))


@lowering("SVDF", kernel="svdf")
def lower_svdf(ctx: LoweringContext):
    op = ctx.op
    if len(op.inputs) != 5:
        raise ctx.fail(f"expected 5 inputs, it has {len(op.inputs)}")
    source = ctx.input(INPUT, ("int8",), constant=False)
    feature_weights = ctx.input(FEATURE_WEIGHTS, ("int8",), constant=True)
    time_weights = ctx.input(TIME_WEIGHTS, ("int8", "int16"), constant=True)
    bias = ctx.optional_input(BIAS, ("int32",), constant=True)
    if bias is None:
        raise ctx.fail("an integer SVDF without a bias is not supported (TFLM's needs one)")
    state = ctx.input(STATE, (time_weights.dtype,))
    result = ctx.output(0)
    if not state.is_variable:
        raise ctx.fail(f"the activation state ({state.name}) is not a variable tensor")
    rank = int(op.options.get("rank", 0))
    if len(source.shape) != 2 or len(feature_weights.shape) != 2 or len(time_weights.shape) != 2:
        raise ctx.fail(f"expected 2-D input and weights, got {list(source.shape)}, {list(feature_weights.shape)}, "
                       f"{list(time_weights.shape)}")
    batches, input_size = source.shape
    filters, memory = time_weights.shape
    if feature_weights.shape != (filters, input_size):
        raise ctx.fail(f"feature weights have shape {list(feature_weights.shape)}, expected [{filters}, {input_size}]")
    if rank < 1 or filters % rank:
        raise ctx.fail(f"rank {rank} does not divide the {filters} filters")
    units = filters // rank
    if tuple(result.shape) != (batches, units) or bias.elements != units:
        raise ctx.fail(f"output {list(result.shape)} and bias ({bias.elements} values) do not match "
                       f"{batches} x {units} units")
    if state.elements != batches * filters * memory:
        raise ctx.fail(f"activation state has {state.elements} values, expected {batches} x {filters * memory}")
    for weights in (feature_weights, time_weights):
        if weights.quant is None or len(weights.quant.scales) != 1:
            raise ctx.fail(f"weights {weights.name} are not quantized per tensor")
    state_scale, time_scale = ctx.scale(state), time_weights.quant.scales[0]
    bias_scale = bias.quant.scales[0] if bias.quant and bias.quant.scales else 0.0
    if abs(bias_scale - float(np.float32(np.float32(state_scale) * np.float32(time_scale)))) >= BIAS_SCALE_TOLERANCE:
        raise ctx.fail(f"bias scale {bias_scale:g} is not activation state scale x time weights scale")
    feature = quantize_multiplier(float32_scale(ctx.scale(source), feature_weights.quant.scales[0], state_scale))
    output = quantize_multiplier(float32_scale(state_scale, time_scale, ctx.scale(result)))
    wide = time_weights.dtype == "int16"
    time_name = ctx.constants.tensor(time_weights, "int16_t" if wide else "int8_t")
    params = ctx.constants.struct(f"op{op.index}_params", "td_svdf_params", [
        ("batches", batches), ("input_size", input_size), ("filters", filters), ("units", units), ("rank", rank),
        ("memory", memory), ("input_zero_point", ctx.zero_point(source)),
        ("state_zero_point", ctx.zero_point(state)), ("output_zero_point", ctx.zero_point(result)),
        ("feature_multiplier", feature[0]), ("feature_shift", feature[1]),
        ("output_multiplier", output[0]), ("output_shift", output[1]),
        ("feature_weights", ctx.constants.tensor(feature_weights, "int8_t")),
        ("time_weights", "NULL" if wide else time_name), ("time_weights16", time_name if wide else "NULL"),
        ("bias", ctx.constants.tensor(bias, "int32_t")),
    ], f"op {op.index}: SVDF rank {rank}, {filters} filters x {memory} steps, {'int16' if wide else 'int8'} state")
    function = "td_svdf_s16_state" if wide else "td_svdf_s8"
    return ctx.lowered(function, (params, ctx.ref(source), ctx.ref(state), ctx.ref(result)),
                       variant="int16 state" if wide else "reference")
