/* Reference LOGISTIC and TANH: the input rescaled to Q4.27, the function evaluated in fixed point, the Q0.31
 * result rounded to int8. */
#include "activations.h"

#include "td_fixedpoint.h"

void td_logistic_s8(const td_transcendental_params *params, const int8_t *input, int8_t *output)
{
    for (int32_t i = 0; i < params->count; ++i) {
        const int32_t x = (int32_t)input[i] - params->input_zero_point;
        int32_t value;
        if (x <= -params->input_range_radius) {
            value = INT8_MIN;
        } else if (x >= params->input_range_radius) {
            value = INT8_MAX;
        } else {
            const int32_t q4 = td_multiply_by_quantized_multiplier(x, params->input_multiplier,
                                                                   params->input_left_shift);
            value = td_clamp_i32(td_rounding_divide_by_pot(td_fp_logistic_q4(q4), 31 - 8) + INT8_MIN, INT8_MIN,
                                 INT8_MAX);
        }
        output[i] = (int8_t)value;
    }
}

void td_tanh_s8(const td_transcendental_params *params, const int8_t *input, int8_t *output)
{
    for (int32_t i = 0; i < params->count; ++i) {
        const int32_t x = (int32_t)input[i] - params->input_zero_point;
        int32_t value;
        if (x <= -params->input_range_radius) {
            value = INT8_MIN;
        } else if (x >= params->input_range_radius) {
            value = INT8_MAX;
        } else {
            const int32_t q4 = td_multiply_by_quantized_multiplier(x, params->input_multiplier,
                                                                   params->input_left_shift);
            value = td_clamp_i32(td_rounding_divide_by_pot(td_fp_tanh_q4(q4), 31 - 7), INT8_MIN, INT8_MAX);
        }
        output[i] = (int8_t)value;
    }
}
