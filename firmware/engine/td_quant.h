/* Fixed-point helpers of the TFLite int8 quantization scheme, shared by every kernel.
 * A real multiplier M is stored as a Q31 value q in [2^30, 2^31) and a power-of-two exponent s
 * (M = q * 2^(s - 31)); both are computed by the generator. Rounding follows the reference
 * ("double rounding") behaviour so results equal TFLM's bit for bit. */
#ifndef TD_QUANT_H
#define TD_QUANT_H

#include <stdint.h>

/* For a kernel body shared by several element types: each caller gets its own copy with the element size fixed, so
 * the shared code adds no per-element test (-Os would otherwise keep one copy that tests the size). */
#define TD_ALWAYS_INLINE static inline __attribute__((always_inline))

static inline int32_t td_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t td_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }

static inline int32_t td_clamp_i32(int32_t value, int32_t low, int32_t high)
{
    return td_min_i32(td_max_i32(value, low), high);
}

/* High 32 bits of 2*a*b, rounded to nearest (ties away from zero); the one overflowing case saturates. */
static inline int32_t td_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t product = (int64_t)a * (int64_t)b;
    const int64_t nudge = product >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((product + nudge) / ((int64_t)1 << 31));
}

/* x / 2^exponent rounded to nearest, ties away from zero (exponent in [0, 31]). */
static inline int32_t td_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((((int64_t)1) << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* Arithmetic shift of a negative value: implementation-defined in C, arithmetic on gcc and every target. */
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * M for M = multiplier * 2^(shift - 31); shift > 0 scales up first (wrapping like the reference). */
static inline int32_t td_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    const int32_t scaled = (int32_t)((uint32_t)x << left_shift);
    return td_rounding_divide_by_pot(td_saturating_rounding_doubling_high_mul(scaled, multiplier), right_shift);
}

/* The int8 output of one output channel's accumulator: plus its bias (if any), rescaled by the channel's (or the
 * single) multiplier and shift, plus the output zero point, clamped to the activation range. The epilogue of the
 * reference kernels that accumulate int8 products (conv, depthwise conv, fully connected). */
static inline int8_t td_accumulator_to_s8(int32_t acc, const int32_t *bias, int32_t channel, int32_t per_channel,
                                          const int32_t *multipliers, const int32_t *shifts, int32_t output_offset,
                                          int32_t activation_min, int32_t activation_max)
{
    if (bias != 0) {
        acc += bias[channel];
    }
    const int32_t c = per_channel ? channel : 0;
    acc = td_multiply_by_quantized_multiplier(acc, multipliers[c], shifts[c]) + output_offset;
    return (int8_t)td_clamp_i32(acc, activation_min, activation_max);
}

static inline int8_t td_saturate_i8(int32_t value)
{
    return (int8_t)td_clamp_i32(value, INT8_MIN, INT8_MAX);
}

/* std::round for float without libm: to nearest, ties away from zero. */
static inline float td_round_f32(float value)
{
    if (!(value > -8388608.0f && value < 8388608.0f)) {
        return value; /* |value| >= 2^23 is already integral (and NaN stays NaN) */
    }
    const float truncated = (float)(int32_t)value;
    const float fraction = value - truncated; /* exact below 2^23 */
    if (fraction >= 0.5f) {
        return truncated + 1.0f;
    }
    if (fraction <= -0.5f) {
        return truncated - 1.0f;
    }
    return truncated;
}

/* A float rounded and clamped into [low, high] (NaN gives low). */
static inline int32_t td_round_clamp_f32(float value, int32_t low, int32_t high)
{
    const float rounded = td_round_f32(value);
    if (!(rounded >= (float)low)) {
        return low;
    }
    if (rounded > (float)high) {
        return high;
    }
    return (int32_t)rounded;
}

/* QUANTIZE of one float: round(x / scale) + zero point, clamped into [low, high]; the rounding comes before the
 * zero point is added, and a quotient beyond int32 (or NaN, low) saturates first, as the reference does. */
static inline int32_t td_quantize_f32(float value, float scale, int32_t zero_point, int32_t low, int32_t high)
{
    const float scaled = td_round_f32(value / scale);
    if (!(scaled >= -2147483648.0f)) {
        return low;
    }
    if (scaled >= 2147483648.0f) {
        return high;
    }
    return td_clamp_i32((int32_t)scaled + zero_point, low, high);
}

#endif /* TD_QUANT_H */
