/* Reference LEAKY_RELU. */
#include "leaky_relu.h"

#include "td_quant.h"

static int32_t leaky(const td_leaky_relu_params *params, int32_t raw)
{
    const int32_t x = raw - params->input_zero_point;
    int32_t value = params->output_zero_point;
    if (x >= 0) {
        value += td_multiply_by_quantized_multiplier(x, params->identity_multiplier, params->identity_shift);
    } else {
        const int32_t scaled = td_multiply_by_quantized_multiplier(x, params->alpha_multiplier, params->alpha_shift);
        value += params->alpha_negative ? -scaled : scaled;
    }
    return value;
}

void td_leaky_relu_s8(const td_leaky_relu_params *params, const int8_t *input, int8_t *output)
{
    for (int32_t i = 0; i < params->count; ++i) {
        output[i] = (int8_t)td_clamp_i32(leaky(params, input[i]), INT8_MIN, INT8_MAX);
    }
}

void td_leaky_relu_s16(const td_leaky_relu_params *params, const int16_t *input, int16_t *output)
{
    for (int32_t i = 0; i < params->count; ++i) {
        output[i] = (int16_t)td_clamp_i32(leaky(params, input[i]), INT16_MIN, INT16_MAX);
    }
}
