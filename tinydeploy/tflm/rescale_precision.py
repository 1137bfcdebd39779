"""Where the pinned TFLM library's LEAKY_RELU and SUB give other outputs than current TFLM.

Both kernels derive their Q31 multipliers from ratios of the tensors' float32 scales. The pinned library's source
(and current TFLM's) writes the ratio as a float expression, e.g. LEAKY_RELU's `input_scale * alpha / output_scale`
and SUB's `input2_scale / (2 * max_scale)`, so on the Cortex-M4 it is rounded to a 24-bit float before
QuantizeMultiplier spreads it over 31 bits; the tflite_micro runtime's outputs (current TFLM, the oracle) match
the ratio taken in double precision, as the native engine takes it (measured on the 28 seanet LEAKY_RELU and SUB
models; the virtual board's outputs match the single-precision arithmetic). The two multipliers then differ in
their low bits, and an output differs by 1 LSB wherever x * multiplier lands on the other side of a rounding
boundary. Current TFLM also applies a negative alpha as -(x * |multiplier|), the pinned library multiplies by the
negative multiplier, whose ties round differently.

Whether that happens depends only on the op's quantization parameters and on the input value(s), so the check
evaluates both arithmetics over input values: every value of a LEAKY_RELU (exact), every pair for int8 SUB (exact),
and every value of one SUB operand against a spread of values of the other for int16 SUB (65536^2 pairs are too
many; a difference found is an input pair that shows it). The integer arithmetic is TFLM's
MultiplyByQuantizedMultiplier (rounding doubling high multiply, then a rounding right shift), as in
firmware/engine/td_quant.h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from tinydeploy.model.tflite import Operator, TfliteModel

_RANGES = {"int8": (-128, 127), "int16": (-32768, 32767)}
_SUB_LEFT_SHIFT = {"int8": 20, "int16": 15}
_INT32_MIN = -(1 << 31)
# int16 SUB: values of the operand with the larger scale tried against every value of the other one
_SUB_INT16_SPREAD = 129
# an input that shows a difference: (raw input values, the pinned library's output, current TFLM's)
_Case = tuple[tuple[int, ...], int, int]


@dataclass(frozen=True)
class RescaleDifference:
    """One op whose outputs differ, and an input that shows it."""

    op_index: int
    op: str
    dtype: str
    inputs: tuple[int, ...]  # raw input value(s)
    pinned: int  # the pinned library's output
    current: int  # current TFLM's output

    def example(self, name_op: bool = True) -> str:
        shown = (f"input {self.inputs[0]} gives" if len(self.inputs) == 1
                 else f"inputs ({self.inputs[0]}, {self.inputs[1]}) give")
        return f"{f'op {self.op_index}: ' if name_op else ''}{shown} {self.pinned}, current TFLM {self.current}"


def _quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier, sign kept (the pinned LEAKY_RELU passes a negative alpha's through)."""
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    fixed = _round_half_away(mantissa * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return fixed, shift


def _round_half_away(value: float) -> int:
    """TfLiteRound / std::round: to nearest, ties away from zero."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def _activation_range(activation: str, scale: float, zero_point: int, low: int, high: int) -> tuple[int, int]:
    """A fused activation's clamp in the output's quantized domain (TFLite divides in float32)."""
    bounds = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}
    real_low, real_high = bounds.get(activation, (None, None))

    def quantize(real: float) -> int:
        return zero_point + _round_half_away(float(np.float32(real) / np.float32(scale)))

    return (low if real_low is None else max(low, quantize(real_low)),
            high if real_high is None else min(high, quantize(real_high)))


def _wrap32(values: np.ndarray) -> np.ndarray:
    return ((values + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _multiply(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """MultiplyByQuantizedMultiplier over int64 arrays holding int32 values (left shifts wrap as on the device)."""
    x = _wrap32(x << max(shift, 0)) if shift > 0 else x
    product = x * multiplier
    nudge = np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    total = product + nudge
    high = np.sign(total) * (np.abs(total) >> 31)  # C division: towards zero
    if multiplier == _INT32_MIN:
        high = np.where(x == _INT32_MIN, (1 << 31) - 1, high)
    right = max(-shift, 0)
    if right == 0:
        return high
    mask = (1 << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


def _scales(model: TfliteModel, op: Operator) -> tuple[list[float], list[int]] | None:
    tensors = [model.tensors[i] for i in (*op.inputs, *op.outputs) if i >= 0]
    if any(t.quant is None or not t.quant.scales for t in tensors):
        return None
    return [float(np.float32(t.quant.scales[0])) for t in tensors], [int(t.quant.zero_points[0]) for t in tensors]


@lru_cache(maxsize=256)
def _leaky_relu(dtype: str, scales: tuple, zero_points: tuple, alpha: float) -> _Case | None:
    low, high = _RANGES[dtype]
    (in_scale, out_scale), (in_zero, out_zero) = scales, zero_points
    alpha = np.float32(alpha)
    f32_in, f32_out = np.float32(in_scale), np.float32(out_scale)
    pinned = (_quantize_multiplier(float(f32_in * alpha / f32_out)), _quantize_multiplier(float(f32_in / f32_out)))
    current = (_quantize_multiplier(in_scale * float(alpha) / out_scale), _quantize_multiplier(in_scale / out_scale))
    if pinned == current and alpha >= 0:  # a negative alpha is also applied differently (below)
        return None
    raw = np.arange(low, high + 1, dtype=np.int64)
    x = raw - in_zero

    def outputs(multipliers, negate_after: bool):
        (alpha_m, alpha_s), (identity_m, identity_s) = multipliers
        if negate_after and alpha_m < 0:  # current TFLM: a negative alpha's multiplier is applied as -(x * |m|)
            negative = -_multiply(x, -alpha_m, alpha_s)
        else:  # the pinned library multiplies by the negative multiplier (ties of the high multiply round up)
            negative = _multiply(x, alpha_m, alpha_s)
        return np.clip(out_zero + np.where(x >= 0, _multiply(x, identity_m, identity_s), negative), low, high)

    return _first_difference(outputs(pinned, False), outputs(current, True), (raw,))


@lru_cache(maxsize=256)
def _sub(dtype: str, scales: tuple, zero_points: tuple, activation: str) -> _Case | None:
    low, high = _RANGES[dtype]
    (scale1, scale2, out_scale), (zero1, zero2, out_zero) = scales, zero_points
    left_shift = _SUB_LEFT_SHIFT[dtype]
    f1, f2, fo = np.float32(scale1), np.float32(scale2), np.float32(out_scale)
    twice = np.float32(2) * max(f1, f2)
    pinned = [_quantize_multiplier(float(r))
              for r in (f1 / twice, f2 / twice, twice / (np.float32(1 << left_shift) * fo))]
    twice_d = 2.0 * max(scale1, scale2)
    current = [_quantize_multiplier(r) for r in (scale1 / twice_d, scale2 / twice_d,
                                                 twice_d / ((1 << left_shift) * out_scale))]
    if pinned == current:
        return None
    act_low, act_high = _activation_range(activation, out_scale, out_zero, low, high)
    every = np.arange(low, high + 1, dtype=np.int64)
    if dtype == "int8":
        others = every
    else:  # every value of the operand with the smaller scale (whose ratio differs) against a spread of the other
        others = np.unique(np.linspace(low, high, _SUB_INT16_SPREAD).round().astype(np.int64))
    wide_first = scale1 >= scale2  # the operand taken from `others`

    def outputs(multipliers, first, second):
        (m1, s1), (m2, s2), (mo, so) = multipliers
        a = _multiply(_wrap32((first - zero1) << left_shift), m1, s1)
        b = _multiply(_wrap32((second - zero2) << left_shift), m2, s2)
        return np.clip(_multiply(_wrap32(a - b), mo, so) + out_zero, act_low, act_high)

    for chunk in np.array_split(others, max(1, others.size // 16)):  # stop at the first chunk that shows one
        fixed, full = np.repeat(chunk, every.size), np.tile(every, chunk.size)
        first, second = (fixed, full) if wide_first else (full, fixed)
        found = _first_difference(outputs(pinned, first, second), outputs(current, first, second), (first, second))
        if found is not None:
            return found
    return None


def _first_difference(pinned: np.ndarray, current: np.ndarray, inputs) -> _Case | None:
    differ = np.flatnonzero(pinned != current)
    if differ.size == 0:
        return None
    at = int(differ[0])
    return tuple(int(values[at]) for values in inputs), int(pinned[at]), int(current[at])


def rescale_differences(model: TfliteModel) -> list[RescaleDifference]:
    """The int8/int16 LEAKY_RELU and SUB ops for which the pinned library's single-precision multipliers give an
    output other than current TFLM's for some input, each with such an input."""
    found = []
    for op in model.operators:
        if op.op not in ("LEAKY_RELU", "SUB") or not op.outputs or op.outputs[0] < 0:
            continue
        dtype = model.tensors[op.outputs[0]].dtype
        if dtype not in _RANGES or any(model.tensors[i].dtype != dtype for i in op.inputs if i >= 0):
            continue
        params = _scales(model, op)
        if params is None:
            continue
        scales, zero_points = (tuple(values) for values in params)
        if op.op == "LEAKY_RELU":
            case = _leaky_relu(dtype, scales, zero_points, float(op.options.get("alpha", 0.0)))
        else:
            case = _sub(dtype, scales, zero_points, op.activation)
        if case is not None:
            found.append(RescaleDifference(op.index, op.op, dtype, *case))
    return found
