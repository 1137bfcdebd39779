"""UNIDIRECTIONAL_SEQUENCE_LSTM, integer, as TFLM's kernel computes it: int8 activations with int32 biases or int16
activations with int64 biases, int8 per-tensor weights, an int16 cell state whose scale is a power of two.

TFLM's integer LSTM ignores the converter's intermediate tensors (their float scales included): every gate's fully
connected layers produce Q3.12 (scale 2^-12) and every gate output is Q0.15 (2^-15). The multipliers below are
derived from those fixed scales and the tensors' own scales, in the float/double mix TFLM uses. Hidden and cell
state are variable tensors: the planner keeps them for the whole program and the engine resets them at init."""

from __future__ import annotations

import numpy as np

from tinydeploy.engine.quant import quantize_multiplier, quantize_multiplier_wide, round_half_away
from tinydeploy.engine.registry import LoweringContext, c_struct, lowering, same

GATE_INPUT_SCALE = 2.0 ** -12  # the gates' fully connected outputs (Q3.12)
GATE_OUTPUT_SCALE = 2.0 ** -15  # sigmoid/tanh outputs (Q0.15)

# Input positions of the op (TFLM's lstm_shared.h): weights from the input, from the hidden state, biases.
INPUT = 0
INPUT_WEIGHTS = {"input": 1, "forget": 2, "cell": 3, "output": 4}
RECURRENT_WEIGHTS = {"input": 5, "forget": 6, "cell": 7, "output": 8}
BIASES = {"input": 12, "forget": 13, "cell": 14, "output": 15}
HIDDEN_STATE, CELL_STATE = 18, 19
UNSUPPORTED = {9: "peephole", 10: "peephole", 11: "peephole", 16: "projection", 17: "projection",
               20: "layer normalization", 21: "layer normalization", 22: "layer normalization",
               23: "layer normalization"}
GATE_ORDER = ("forget", "input", "cell", "output")  # td_lstm_params.gates, TD_LSTM_FORGET ...


def float32_product(a: float, b: float) -> float:
    """a * b rounded to float32, as C++ multiplies two float scales before widening to double."""
    return float(np.float32(a) * np.float32(b))


def checked_log2(value: float) -> int:
    """TFLM's CheckedLog2 exponent: log(x) * (1 / log(2)) in float32, rounded half away from zero."""
    with np.errstate(all="ignore"):
        log2 = np.float32(np.log(np.float32(value))) * (np.float32(1.0) / np.float32(np.log(np.float32(2.0))))
    return round_half_away(float(np.float32(log2)))


def table_input_scaling(shift: int) -> tuple[int, int]:
    """(multiplier, right shift) TFLM's int16 tanh applies to a value before its table, given the left shift
    15 + log2(scale) - 3 that turns the value into Q3.12 (times 3, the table's input scaling)."""
    if shift < 0:
        return 3, -shift
    return 3 << shift, 0


@lowering("UNIDIRECTIONAL_SEQUENCE_LSTM", kernel="lstm", dtypes=same("int8", "int16"))
def lower_lstm(ctx: LoweringContext):
    op = ctx.op
    if len(op.inputs) != 24 or len(op.outputs) != 1:
        raise ctx.fail(f"expected 24 inputs and 1 output, it has {len(op.inputs)} and {len(op.outputs)}")
    for position, variant in UNSUPPORTED.items():
        if op.inputs[position] != -1:
            raise ctx.fail(f"LSTM with {variant} (input {position}) is not supported; TFLM runs only the standard LSTM")
    source = ctx.input(INPUT, ("int8", "int16"), constant=False)
    wide = source.dtype == "int16"
    bias_dtype = "int64" if wide else "int32"
    result = ctx.output(0, (source.dtype,))
    hidden = ctx.input(HIDDEN_STATE, (source.dtype,))
    cell = ctx.input(CELL_STATE, ("int16",))
    for name, tensor in (("hidden state", hidden), ("cell state", cell)):
        if not tensor.is_variable:
            raise ctx.fail(f"the {name} ({tensor.name}) is not a variable tensor")
    if len(source.shape) != 3 or len(result.shape) != 3:
        raise ctx.fail(f"expected 3-D input and output, got {list(source.shape)} -> {list(result.shape)}")
    time_major = bool(op.options.get("timeMajor", False))
    steps, batches = (source.shape[0], source.shape[1]) if time_major else (source.shape[1], source.shape[0])
    input_size = source.shape[2]
    state_size = result.shape[2]
    if tuple(result.shape[:2]) != tuple(source.shape[:2]):
        raise ctx.fail(f"output shape {list(result.shape)} does not follow input shape {list(source.shape)}")
    for name, tensor in (("hidden state", hidden), ("cell state", cell)):
        if tensor.elements != batches * state_size:
            raise ctx.fail(f"the {name} has {tensor.elements} values, expected {batches} x {state_size}")

    gates = {}
    hidden_scale, cell_scale = ctx.scale(hidden), ctx.scale(cell)
    weight_zero_points = set()
    for gate in GATE_ORDER:
        input_weights = ctx.input(INPUT_WEIGHTS[gate], ("int8",), constant=True)
        recurrent_weights = ctx.input(RECURRENT_WEIGHTS[gate], ("int8",), constant=True)
        bias = ctx.input(BIASES[gate], (bias_dtype,), constant=True)
        if input_weights.shape != (state_size, input_size) or recurrent_weights.shape != (state_size, state_size):
            raise ctx.fail(f"{gate} gate weights have shapes {list(input_weights.shape)} and "
                           f"{list(recurrent_weights.shape)}, expected [{state_size}, {input_size}] and "
                           f"[{state_size}, {state_size}]")
        if bias.elements != state_size:
            raise ctx.fail(f"{gate} gate bias has {bias.elements} values, expected {state_size}")
        for weights in (input_weights, recurrent_weights):
            if weights.quant is None or len(weights.quant.scales) != 1:
                raise ctx.fail(f"weights {weights.name} are not quantized per tensor (TFLM's LSTM needs one scale)")
            weight_zero_points.add(ctx.zero_point(weights))
        # TFLM's fully connected multiplier: float32 product of the scales, divided in double.
        requantize = quantize_multiplier_wide if wide else quantize_multiplier
        input_multiplier = requantize(
            float32_product(ctx.scale(source), input_weights.quant.scales[0]) / GATE_INPUT_SCALE)
        recurrent_multiplier = requantize(
            float32_product(hidden_scale, recurrent_weights.quant.scales[0]) / GATE_INPUT_SCALE)
        bias_name = ctx.constants.tensor(bias, "int64_t" if wide else "int32_t")
        gates[gate] = c_struct([
            ("input_weights", ctx.constants.tensor(input_weights, "int8_t")),
            ("recurrent_weights", ctx.constants.tensor(recurrent_weights, "int8_t")),
            ("bias", "NULL" if wide else bias_name), ("bias64", bias_name if wide else "NULL"),
            ("input_multiplier", input_multiplier[0]), ("input_shift", input_multiplier[1]),
            ("recurrent_multiplier", recurrent_multiplier[0]), ("recurrent_shift", recurrent_multiplier[1]),
        ])

    if op.activation != "TANH":
        raise ctx.fail(f"cell gate activation {op.activation} is not supported (TFLM's LSTM computes only tanh there)")
    if len(weight_zero_points) != 1:
        raise ctx.fail("the gates' weights have different zero points")
    if wide and (ctx.zero_point(source) or ctx.zero_point(hidden)):
        raise ctx.fail("int16 activations must be symmetric (zero point 0)")
    cell_power = checked_log2(cell_scale)
    tanh_multiplier, tanh_shift = table_input_scaling(15 + cell_power - 3)
    if tanh_shift > 30 or tanh_multiplier > (1 << 16):
        raise ctx.fail(f"cell state scale {cell_scale:g} is outside what TFLM's LSTM handles")
    cell_clip = float(op.options.get("cellClip", 0.0))
    quantized_clip = int(min(max(float(np.float32(cell_clip)) / float(cell_scale), -32768.0), 32767.0))
    # Inter-gate products: double products of the (float) scales.
    forget = quantize_multiplier(GATE_OUTPUT_SCALE * cell_scale / cell_scale)
    update = quantize_multiplier(GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / cell_scale)
    output = quantize_multiplier(GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / hidden_scale)
    limits = (-32768, 32767) if wide else (-128, 127)
    params = ctx.constants.struct(f"op{op.index}_params", "td_lstm_params", [
        ("batches", batches), ("time_steps", steps), ("input_size", input_size), ("state_size", state_size),
        ("time_major", time_major), ("input_offset", -ctx.zero_point(source)),
        ("hidden_offset", -ctx.zero_point(hidden)), ("weights_offset", -weight_zero_points.pop()),
        ("gates", [gates[g] for g in GATE_ORDER]),
        ("forget_multiplier", forget[0]), ("forget_shift", forget[1]),
        ("input_multiplier", update[0]), ("input_shift", update[1]),
        ("clip_cell", cell_clip > 0), ("cell_clip", quantized_clip if cell_clip > 0 else 0),
        ("cell_tanh_multiplier", tanh_multiplier), ("cell_tanh_shift", tanh_shift),
        ("output_multiplier", output[0]), ("output_shift", output[1]),
        ("hidden_zero_point", ctx.zero_point(hidden)), ("hidden_min", limits[0]), ("hidden_max", limits[1]),
    ], f"op {op.index}: UNIDIRECTIONAL_SEQUENCE_LSTM {batches}x{steps} steps, {input_size} -> {state_size}")
    if not time_major or batches == 1:
        # Rows are processed in memory order and row r's output is written while row r's input is still read:
        # the output may start up to min over r of (input rows before r) - (output rows up to r) after the input.
        rows = batches * steps
        ctx.streams_over = source.index, min(-state_size, input_size * (rows - 1) - state_size * rows) * source.itemsize
    function = "td_lstm_s16" if wide else "td_lstm_s8"
    return ctx.lowered(function, (params, ctx.ref(source), ctx.ref(result), ctx.ref(hidden), ctx.ref(cell)),
                       variant="int16x8" if wide else "reference")
