/* Reference RELU / RELU6. */
#include "relu.h"

#include "td_quant.h"

static int32_t relu(const td_relu_params *params, int32_t raw)
{
    const int32_t value = params->output_zero_point +
        td_multiply_by_quantized_multiplier(raw - params->input_zero_point, params->multiplier, params->shift);
    return td_clamp_i32(value, params->activation_min, params->activation_max);
}

void td_relu_s8(const td_relu_params *params, const int8_t *input, int8_t *output)
{
    for (int32_t i = 0; i < params->count; ++i) {
        output[i] = (int8_t)relu(params, input[i]);
    }
}

void td_relu_s16(const td_relu_params *params, const int16_t *input, int16_t *output)
{
    for (int32_t i = 0; i < params->count; ++i) {
        output[i] = (int16_t)relu(params, input[i]);
    }
}
