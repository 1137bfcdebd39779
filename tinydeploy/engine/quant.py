"""TFLite int8 quantization arithmetic done at generation time (the device only multiplies and shifts)."""

from __future__ import annotations

import math

import numpy as np

from tinydeploy.errors import TinydeployError

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(value: float) -> int:
    """std::round: to nearest, ties away from zero (Python's round() ties to even)."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """A positive real multiplier as (Q31 multiplier, shift) with real = multiplier * 2^(shift - 31).

    Same decomposition as TFLite's QuantizeMultiplier: frexp, round the mantissa to 31 bits, renormalize when
    rounding reaches 2^31, and flush multipliers below 2^-32 to zero."""
    if not math.isfinite(real_multiplier) or real_multiplier < 0:
        raise TinydeployError(f"quantization multiplier {real_multiplier!r} is not a finite non-negative number",
                              "the model's quantization scales are broken; convert it again")
    if real_multiplier == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real_multiplier)
    fixed = round_half_away(mantissa * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 31:
        raise TinydeployError(f"quantization multiplier {real_multiplier:g} is too large (2^{shift})",
                              "the model's quantization scales are broken; convert it again")
    return fixed, shift


def activation_range(activation: str, scale: float, zero_point: int,
                     qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """Clamp bounds of a fused activation in the output's quantized domain (float32 division, as TFLite does)."""

    def quantize(real: float) -> int:
        return zero_point + round_half_away(float(np.float32(real) / np.float32(scale)))

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise TinydeployError(f"fused activation {activation} is not supported by the native engine",
                          "supported fused activations: NONE, RELU, RELU6, RELU_N1_TO_1")


def calculate_input_radius(integer_bits: int, left_shift: int, total_signed_bits: int = 31) -> int:
    """Largest |input difference| whose rescaled value still fits Q(integer_bits): beyond it the output saturates."""
    max_rescaled = (1.0 * ((1 << integer_bits) - 1) * float(1 << (total_signed_bits - integer_bits))
                    / float(1 << left_shift))
    return int(math.floor(max_rescaled))


SOFTMAX_DIFF_INTEGER_BITS = 5


def softmax_input_scaling(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(multiplier, left shift, diff_min) turning int8 differences to the row maximum into Q5.26 values."""
    real = min(float(beta) * float(input_scale) * float(1 << (31 - SOFTMAX_DIFF_INTEGER_BITS)), (1 << 31) - 1.0)
    multiplier, shift = quantize_multiplier(real)
    if shift < 0:
        raise TinydeployError(f"softmax input scale {input_scale:g} (beta {beta:g}) is too small",
                              "the model's quantization scales are broken; convert it again")
    diff_min = -calculate_input_radius(SOFTMAX_DIFF_INTEGER_BITS, shift)
    return multiplier, shift, diff_min


TRANSCENDENTAL_INPUT_INTEGER_BITS = 4


def transcendental_input_scaling(input_scale: float) -> tuple[int, int, int]:
    """(multiplier, left shift, range radius) turning int8 inputs into Q4.27 for LOGISTIC and TANH.

    The reference takes frexp() of scale * 2^27 and rounds the mantissa, without renormalizing."""
    real = float(input_scale) * float(1 << (31 - TRANSCENDENTAL_INPUT_INTEGER_BITS))
    mantissa, shift = math.frexp(real)
    multiplier = round_half_away(mantissa * (1 << 31))
    if not 0 < multiplier < (1 << 31) or not 0 <= shift <= 31:
        raise TinydeployError(f"input scale {input_scale:g} cannot be rescaled to Q4.27",
                              "the model's quantization scales are broken; convert it again")
    return multiplier, shift, calculate_input_radius(TRANSCENDENTAL_INPUT_INTEGER_BITS, shift)


WIDE_MAX_SHIFT = 7  # TFLM's 64-bit MultiplyByQuantizedMultiplier takes shifts -31..7


def quantize_multiplier_wide(real_multiplier: float) -> tuple[int, int]:
    """quantize_multiplier for requantizing a 64-bit accumulator (int16x8 kernels); refuses a multiplier of 2^7 or
    more, which TFLM's arithmetic does not define."""
    multiplier, shift = quantize_multiplier(real_multiplier)
    if shift > WIDE_MAX_SHIFT:
        raise TinydeployError(f"quantization multiplier {real_multiplier:g} is too large for 16-bit activations "
                              f"(2^{shift}, at most 2^{WIDE_MAX_SHIFT})",
                              "the model's quantization scales are broken; convert it again")
    return multiplier, shift
