/* Reference int8 HARD_SWISH: every step in 16 bits, rounding and saturating as TFLite's reference does. */
#include "hard_swish.h"

#include "td_quant.h"

/* High 16 bits of 2*a*b rounded to nearest (ties away from zero); the one overflowing case saturates. */
static int16_t rounding_doubling_high_mul_16(int16_t a, int16_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    const int32_t product = (int32_t)a * (int32_t)b;
    const int32_t nudge = product >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (int16_t)((product + nudge) / (1 << 15));
}

/* The same without rounding (truncates toward zero). */
static int16_t doubling_high_mul_16(int16_t a, int16_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    return (int16_t)(((int32_t)a * (int32_t)b) / (1 << 15));
}

static int16_t rounding_divide_by_pot_16(int16_t x, int32_t exponent)
{
    const int32_t mask = (1 << exponent) - 1;
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int16_t)(((int32_t)x >> exponent) + (remainder > threshold ? 1 : 0));
}

static int16_t saturating_left_shift_16(int16_t value, int32_t amount)
{
    const int32_t result = (int32_t)value * (1 << amount);
    return (int16_t)td_clamp_i32(result, INT16_MIN, INT16_MAX);
}

void td_hard_swish_s8(const td_hard_swish_params *params, const int8_t *input, int8_t *output)
{
    for (int32_t i = 0; i < params->count; ++i) {
        const int16_t value = (int16_t)((int32_t)input[i] - params->input_zero_point);
        const int16_t hires = (int16_t)(value * (1 << 7));
        const int16_t preshift_output = rounding_doubling_high_mul_16(hires, (int16_t)params->output_multiplier);
        int16_t reluish = hires;
        if (params->reluish_exponent > 0) {
            reluish = saturating_left_shift_16(reluish, params->reluish_exponent - 1);
        }
        reluish = rounding_doubling_high_mul_16(reluish, (int16_t)params->reluish_multiplier);
        if (params->reluish_exponent > 0) {
            reluish = saturating_left_shift_16(reluish, 1);
        }
        if (params->reluish_exponent < 0) {
            reluish = rounding_divide_by_pot_16(reluish, -params->reluish_exponent);
        }
        reluish = (int16_t)(((int32_t)reluish + (1 << 15)) >> 1); /* [-1, 1] -> [0, 1] */
        const int16_t product = doubling_high_mul_16(reluish, preshift_output);
        int16_t result = rounding_divide_by_pot_16(product, -params->output_exponent);
        result = (int16_t)(result + params->output_zero_point);
        output[i] = (int8_t)td_clamp_i32(result, INT8_MIN, INT8_MAX);
    }
}
