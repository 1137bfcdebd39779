/* Reference SUB. */
#include "sub.h"

#include <stddef.h>

#include "td_quant.h"

/* The requantized difference of two raw values; wraps like the reference's int32 arithmetic. */
static int32_t difference(const td_add_params *params, int32_t raw1, int32_t raw2)
{
    const int32_t a = (int32_t)((uint32_t)(raw1 + params->input1_offset) << params->left_shift);
    const int32_t b = (int32_t)((uint32_t)(raw2 + params->input2_offset) << params->left_shift);
    const int32_t scaled1 = td_multiply_by_quantized_multiplier(a, params->input1_multiplier, params->input1_shift);
    const int32_t scaled2 = td_multiply_by_quantized_multiplier(b, params->input2_multiplier, params->input2_shift);
    const int32_t raw = (int32_t)((uint32_t)scaled1 - (uint32_t)scaled2);
    const int32_t value = td_multiply_by_quantized_multiplier(raw, params->output_multiplier, params->output_shift) +
                          params->output_offset;
    return td_clamp_i32(value, params->activation_min, params->activation_max);
}

void td_sub_s8(const td_add_params *params, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    td_broadcast_walk walk;
    for (int more = td_broadcast_begin(&walk, &params->shape); more; more = td_broadcast_next(&walk, &params->shape)) {
        *output++ = (int8_t)difference(params, input1[walk.at1], input2[walk.at2]);
    }
}

void td_sub_s16(const td_add_params *params, const int16_t *input1, const int16_t *input2, int16_t *output)
{
    td_broadcast_walk walk;
    for (int more = td_broadcast_begin(&walk, &params->shape); more; more = td_broadcast_next(&walk, &params->shape)) {
        *output++ = (int16_t)difference(params, input1[walk.at1], input2[walk.at2]);
    }
}
