/* Reference int16 ADD and MUL. */
#include "elementwise_s16.h"

#include <stddef.h>

#include "td_quant.h"

void td_add_s16(const td_add_params *params, const int16_t *input1, const int16_t *input2, int16_t *output)
{
    const td_broadcast *shape = &params->shape;
    if (td_shape_is_empty(shape->dims)) {
        return;
    }
    int32_t index[TD_MAX_DIMS] = {0};
    size_t position = 0;
    do {
        const int32_t a = ((int32_t)input1[td_offset(index, shape->strides1)] + params->input1_offset)
                          * (1 << params->left_shift);
        const int32_t b = ((int32_t)input2[td_offset(index, shape->strides2)] + params->input2_offset)
                          * (1 << params->left_shift);
        const int32_t sum = td_multiply_by_quantized_multiplier(a, params->input1_multiplier, params->input1_shift) +
                            td_multiply_by_quantized_multiplier(b, params->input2_multiplier, params->input2_shift);
        const int32_t value =
            td_multiply_by_quantized_multiplier(sum, params->output_multiplier, params->output_shift) +
            params->output_offset;
        output[position++] = (int16_t)td_clamp_i32(value, params->activation_min, params->activation_max);
    } while (td_next_index(index, shape->dims));
}

void td_mul_s16(const td_mul_params *params, const int16_t *input1, const int16_t *input2, int16_t *output)
{
    const td_broadcast *shape = &params->shape;
    if (td_shape_is_empty(shape->dims)) {
        return;
    }
    int32_t index[TD_MAX_DIMS] = {0};
    size_t position = 0;
    do {
        const int32_t a = (int32_t)input1[td_offset(index, shape->strides1)] + params->input1_offset;
        const int32_t b = (int32_t)input2[td_offset(index, shape->strides2)] + params->input2_offset;
        const int32_t value =
            td_multiply_by_quantized_multiplier(a * b, params->output_multiplier, params->output_shift) +
            params->output_offset;
        output[position++] = (int16_t)td_clamp_i32(value, params->activation_min, params->activation_max);
    } while (td_next_index(index, shape->dims));
}
