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


INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
DTYPE_RANGES = {"int8": (INT8_MIN, INT8_MAX), "int16": (INT16_MIN, INT16_MAX), "int32": (INT32_MIN, INT32_MAX)}


def f32(value: float) -> float:
    """The float32 nearest `value`, as a Python float (TFLite computes many scales in single precision)."""
    return float(np.float32(value))


def quantize_signed_multiplier(real_multiplier: float) -> tuple[int, int, bool]:
    """A real multiplier of either sign as (Q31 magnitude, shift, negative), as TFLite's QuantizeMultiplier treats a
    negative one: the mantissa rounds symmetrically and is not renormalized when it reaches -2^31."""
    if real_multiplier >= 0:
        multiplier, shift = quantize_multiplier(real_multiplier)
        return multiplier, shift, False
    if not math.isfinite(real_multiplier):
        raise TinydeployError(f"quantization multiplier {real_multiplier!r} is not finite",
                              "the model's quantization scales are broken; convert it again")
    mantissa, shift = math.frexp(-real_multiplier)
    fixed = round_half_away(mantissa * (1 << 31))
    if shift < -31:
        return 0, 0, False
    if fixed >= 1 << 31 or shift > 31:
        raise TinydeployError(f"quantization multiplier {real_multiplier:g} is out of range",
                              "the model's quantization scales are broken; convert it again")
    return fixed, shift, True


def _libm():
    """The C math library TFLM itself calls: its expf/logf make the generated tables equal TFLM's on this host."""
    import ctypes
    import ctypes.util

    library = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    for name in ("expf", "logf"):
        getattr(library, name).restype = ctypes.c_float
        getattr(library, name).argtypes = [ctypes.c_float]
    return library


def _round_f32(value: np.float32) -> np.float32:
    """roundf: to nearest, ties away from zero, in single precision."""
    return np.float32(math.copysign(math.floor(abs(float(value)) + 0.5), float(value)))


def int16_lookup_table(transform, input_scale: float, input_zero_point: int, output_scale: float,
                       output_zero_point: int) -> np.ndarray:
    """TFLite's 513-entry int16 interpolation table of `transform` (a float32 -> float32 function), computed in
    single precision step by step as its LUTPopulate does: 512 samples, each corrected by half its interpolation
    error at the interval's midpoint, and the end value."""
    one = np.float32
    scale_in, scale_out = one(input_scale), one(output_scale)
    input_min = scale_in * one(INT16_MIN - input_zero_point)
    input_max = scale_in * one(INT16_MAX - input_zero_point)
    output_min = scale_out * one(INT16_MIN - output_zero_point)
    output_max = scale_out * one(INT16_MAX - output_zero_point)
    steps = 512
    step = (input_max - input_min) / one(steps)
    half_step = step / one(2)
    scaling_inv = one(INT16_MAX - INT16_MIN + 1) / (output_max - output_min)
    table = np.zeros(steps + 1, dtype=np.int64)
    with np.errstate(over="ignore"):
        for i in range(steps):
            value = one(transform(input_min + one(i) * step))
            midpoint = one(transform(input_min + one(i) * step + half_step))
            following = one(transform(input_min + one(i + 1) * step))
            sample = _round_f32(value * scaling_inv)
            interpolated = _round_f32((following * scaling_inv + _round_f32(value * scaling_inv)) / one(2))
            midpoint_value = _round_f32(midpoint * scaling_inv)
            bias = _round_f32((interpolated - midpoint_value) / one(2))
            table[i] = int(min(max(float(sample - bias), INT16_MIN), INT16_MAX))
        table[steps] = int(min(max(float(_round_f32(one(transform(input_max)) * scaling_inv)), INT16_MIN),
                               INT16_MAX))
    return table


def softmax_int16_tables() -> tuple[np.ndarray, np.ndarray]:
    """TFLite's int16 SOFTMAX tables: exp on [-10, 0] and 1 / (1 + x) on [0, 1], both in Q0.15 (model-independent)."""
    libm = _libm()
    span = np.float32(INT16_MAX - INT16_MIN)
    one = np.float32(1.0)
    exp_table = int16_lookup_table(lambda x: libm.expf(float(x)), np.float32(10.0) / span, INT16_MAX,
                                   np.float32(2.0) / span, 0)
    reciprocal = int16_lookup_table(lambda x: one / (one + np.float32(x)), one / span, INT16_MIN,
                                    np.float32(2.0) / span, 0)
    return exp_table, reciprocal


def checked_log2(value: float) -> tuple[bool, int]:
    """TFLite's CheckedLog2 in single precision: (is a power of two within 1e-3, rounded log2)."""
    libm = _libm()
    log2 = np.float32(libm.logf(f32(value))) * np.float32(np.float32(1.0) / np.float32(libm.logf(2.0)))
    rounded = _round_f32(log2)
    return abs(float(log2 - rounded)) < 1e-3, int(rounded)


def transcendental_int16_scaling(input_scale: float, pot_shifts: tuple[int, ...]) -> tuple[int, int]:
    """(multiplier, right shift) of int16 LOGISTIC/TANH turning the input into 1/(3 * 4096) units, as TFLite's
    prepare does: a power-of-two input scale whose shift is in `pot_shifts` becomes 3 << shift with no shift;
    any other scale a multiplier below 32768 doubled up with a shift."""
    is_pot, log2 = checked_log2(input_scale)
    left_shift = 12 + log2  # (15 - 3 integer bits) + log2
    if is_pot and left_shift in pot_shifts:
        return 3 << left_shift, 0
    multiplier = float(input_scale) * 4096.0 * 3.0
    shift = 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    if int(multiplier) > 32767:
        raise TinydeployError(f"int16 input scale {input_scale:g} is too large for LOGISTIC/TANH",
                              "the model's quantization scales are broken; convert it again")
    return int(multiplier), shift
