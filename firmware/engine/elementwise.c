/* Reference ADD and MUL, int8 and int16: both inputs rescaled to a common fixed-point scale (ADD) or multiplied
 * (MUL), then requantized to the output and clamped to the fused activation. */
#include "elementwise.h"

#include <stddef.h>

#include "td_quant.h"

static int32_t add(const td_add_params *params, int32_t raw1, int32_t raw2)
{
    const int32_t a = (raw1 + params->input1_offset) * (1 << params->left_shift);
    const int32_t b = (raw2 + params->input2_offset) * (1 << params->left_shift);
    const int32_t sum = td_multiply_by_quantized_multiplier(a, params->input1_multiplier, params->input1_shift) +
                        td_multiply_by_quantized_multiplier(b, params->input2_multiplier, params->input2_shift);
    const int32_t value = td_multiply_by_quantized_multiplier(sum, params->output_multiplier, params->output_shift) +
                          params->output_offset;
    return td_clamp_i32(value, params->activation_min, params->activation_max);
}

static int32_t mul(const td_mul_params *params, int32_t raw1, int32_t raw2)
{
    const int32_t a = raw1 + params->input1_offset;
    const int32_t b = raw2 + params->input2_offset;
    const int32_t value = td_multiply_by_quantized_multiplier(a * b, params->output_multiplier, params->output_shift) +
                          params->output_offset;
    return td_clamp_i32(value, params->activation_min, params->activation_max);
}

void td_add_s8(const td_add_params *params, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    td_broadcast_walk walk;
    for (int more = td_broadcast_begin(&walk, &params->shape); more; more = td_broadcast_next(&walk, &params->shape)) {
        *output++ = (int8_t)add(params, input1[walk.at1], input2[walk.at2]);
    }
}

void td_mul_s8(const td_mul_params *params, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    td_broadcast_walk walk;
    for (int more = td_broadcast_begin(&walk, &params->shape); more; more = td_broadcast_next(&walk, &params->shape)) {
        *output++ = (int8_t)mul(params, input1[walk.at1], input2[walk.at2]);
    }
}

void td_add_s16(const td_add_params *params, const int16_t *input1, const int16_t *input2, int16_t *output)
{
    td_broadcast_walk walk;
    for (int more = td_broadcast_begin(&walk, &params->shape); more; more = td_broadcast_next(&walk, &params->shape)) {
        *output++ = (int16_t)add(params, input1[walk.at1], input2[walk.at2]);
    }
}

void td_mul_s16(const td_mul_params *params, const int16_t *input1, const int16_t *input2, int16_t *output)
{
    td_broadcast_walk walk;
    for (int more = td_broadcast_begin(&walk, &params->shape); more; more = td_broadcast_next(&walk, &params->shape)) {
        *output++ = (int16_t)mul(params, input1[walk.at1], input2[walk.at2]);
    }
}
