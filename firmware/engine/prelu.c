/* Reference PRELU. */
#include "prelu.h"

#include <stddef.h>

#include "td_int16.h"

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
    td_broadcast_walk walk;
    for (int more = td_broadcast_begin(&walk, &params->shape); more; more = td_broadcast_next(&walk, &params->shape)) {
        *output++ = td_saturate_i8(prelu(params, input[walk.at1], alpha[walk.at2]));
    }
}

void td_prelu_s16(const td_prelu_params *params, const int16_t *input, const int8_t *alpha, int16_t *output)
{
    td_broadcast_walk walk;
    for (int more = td_broadcast_begin(&walk, &params->shape); more; more = td_broadcast_next(&walk, &params->shape)) {
        *output++ = td_saturate_i16(prelu(params, input[walk.at1], alpha[walk.at2]));
    }
}
