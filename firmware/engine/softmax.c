/* Reference SOFTMAX of int8 input: exp of (x - max) in Q5.26 fixed point, a Q12.19 sum, one fixed-point reciprocal
 * per row; the probabilities as int8 (scale 1/256) or int16 (scale 1/65536), both offset by the type's minimum. */
#include "softmax.h"

#include <stddef.h>

#include "td_fixedpoint.h"

#define TD_SOFTMAX_DIFF_INTEGER_BITS 5
#define TD_SOFTMAX_SUM_INTEGER_BITS 12

static int32_t scaled_exp(const td_softmax_params *params, int32_t diff)
{
    /* diff >= diff_min keeps the shifted difference within int32 */
    const int32_t shifted = (int32_t)((uint32_t)diff << params->input_left_shift);
    return td_fp_exp_on_negative_values(td_fp_mul(shifted, params->input_multiplier), TD_SOFTMAX_DIFF_INTEGER_BITS);
}

/* Both output sizes; each caller gets its own copy with output_bytes fixed. Each element is read before it is
 * written: an int8 output may share the input's memory. */
TD_ALWAYS_INLINE void softmax(const td_softmax_params *params, const int8_t *input, void *output, int32_t output_bytes)
{
    const int32_t output_bits = 8 * output_bytes;
    const int32_t lowest = output_bytes == 1 ? INT8_MIN : INT16_MIN;
    const int32_t highest = output_bytes == 1 ? INT8_MAX : INT16_MAX;
    const int32_t depth = params->depth;
    for (int32_t row = 0; row < params->rows; ++row) {
        const int8_t *in = input + (size_t)row * (size_t)depth;
        const size_t first = (size_t)row * (size_t)depth;
        int32_t max_value = INT8_MIN;
        for (int32_t c = 0; c < depth; ++c) {
            max_value = td_max_i32(max_value, in[c]);
        }
        int32_t sum_of_exps = 0;
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_value;
            if (diff >= params->diff_min) {
                sum_of_exps = td_wrap_add(sum_of_exps, td_fp_rescale(scaled_exp(params, diff), 0,
                                                                     TD_SOFTMAX_SUM_INTEGER_BITS));
            }
        }
        int32_t bits_over_unit = 0;
        const int32_t reciprocal = td_fp_reciprocal(sum_of_exps, TD_SOFTMAX_SUM_INTEGER_BITS, &bits_over_unit);
        /* > 31 only past 2^11 classes */
        const int32_t exponent = td_min_i32(bits_over_unit + 31 - output_bits, 31);
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_value;
            int32_t value = lowest;
            if (diff >= params->diff_min) {
                const int32_t probability =
                    td_rounding_divide_by_pot(td_fp_mul(reciprocal, scaled_exp(params, diff)), exponent);
                value = td_clamp_i32(probability + lowest, lowest, highest);
            }
            if (output_bytes == 1) {
                ((int8_t *)output)[first + (size_t)c] = (int8_t)value;
            } else {
                ((int16_t *)output)[first + (size_t)c] = (int16_t)value;
            }
        }
    }
}

void td_softmax_s8(const td_softmax_params *params, const int8_t *input, int8_t *output)
{
    softmax(params, input, output, 1);
}

void td_softmax_s8_s16(const td_softmax_params *params, const int8_t *input, int16_t *output)
{
    softmax(params, input, output, 2);
}
