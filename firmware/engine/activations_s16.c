/* Reference int16 LOGISTIC and TANH: TFLM's table interpolation (td_int16.h) on the rescaled input. */
#include "activations_s16.h"

#include "td_int16.h"

void td_logistic_s16(const td_transcendental_s16_params *params, const int16_t *input, int16_t *output)
{
    for (int32_t i = 0; i < params->count; ++i) {
        output[i] = td_lut_sigmoid(td_lut_input(input[i], params->input_multiplier, params->input_shift));
    }
}

void td_tanh_s16(const td_transcendental_s16_params *params, const int16_t *input, int16_t *output)
{
    for (int32_t i = 0; i < params->count; ++i) {
        output[i] = td_lut_tanh(td_lut_input(input[i], params->input_multiplier, params->input_shift));
    }
}
