/* Reference PRELU. */
#include "prelu.h"

#include <stddef.h>

#include "td_quant.h"

static int32_t prelu(const td_prelu_params *params, int32_t raw, int32_t raw_alpha)
{
    const int32_t x = params->input_offset + raw;
    int32_t value;
    if (x >= 0) {
        value = td_multiply_by_quantized_multiplier(x, params->identity_multiplier, params->identity_shift);
    } else {
        value = td_multiply_by_quantized_multiplier(x * (params->alpha_offset + raw_alpha), params->alpha_multiplier,
                                                    params->alpha_shift);
    }
    return value + params->output_offset;
}

void td_prelu_s8(const td_prelu_params *params, const int8_t *input, const int8_t *alpha, int8_t *output)
{
    const td_broadcast *shape = &params->shape;
    if (td_shape_is_empty(shape->dims)) {
        return;
    }
    int32_t index[TD_MAX_DIMS] = {0};
    size_t position = 0;
    do {
        const int32_t value = prelu(params, input[td_offset(index, shape->strides1)],
                                    alpha[td_offset(index, shape->strides2)]);
        output[position++] = (int8_t)td_clamp_i32(value, INT8_MIN, INT8_MAX);
    } while (td_next_index(index, shape->dims));
}

void td_prelu_s16(const td_prelu_params *params, const int16_t *input, const int8_t *alpha, int16_t *output)
{
    const td_broadcast *shape = &params->shape;
    if (td_shape_is_empty(shape->dims)) {
        return;
    }
    int32_t index[TD_MAX_DIMS] = {0};
    size_t position = 0;
    do {
        const int32_t value = prelu(params, input[td_offset(index, shape->strides1)],
                                    alpha[td_offset(index, shape->strides2)]);
        output[position++] = (int16_t)td_clamp_i32(value, INT16_MIN, INT16_MAX);
    } while (td_next_index(index, shape->dims));
}
