/* Reference QUANTIZE / DEQUANTIZE at int16 edges and between integer types. */
#include "quantize_s16.h"

#include "td_quant.h"

void td_quantize_f32_s16(const td_affine_params *params, const float *input, int16_t *output)
{
    for (int32_t i = 0; i < params->count; ++i) {
        output[i] = (int16_t)td_quantize_f32(input[i], params->scale, params->zero_point, INT16_MIN, INT16_MAX);
    }
}

void td_dequantize_s16_f32(const td_affine_params *params, const int16_t *input, float *output)
{
    /* Must run backwards when in place: each float is wider than the int16 it comes from. */
    for (int32_t i = params->count - 1; i >= 0; --i) {
        output[i] = params->scale * (float)((int32_t)input[i] - params->zero_point);
    }
}

static int32_t load(const void *data, int32_t bytes, int32_t i)
{
    if (bytes == 1) {
        return ((const int8_t *)data)[i];
    }
    if (bytes == 2) {
        return ((const int16_t *)data)[i];
    }
    return ((const int32_t *)data)[i];
}

void td_requantize_any(const td_requantize_any_params *params, const void *input, void *output)
{
    const td_requantize_params *q = &params->requantize;
    const int32_t low = params->output_bytes == 1 ? INT8_MIN : params->output_bytes == 2 ? INT16_MIN : INT32_MIN;
    const int32_t high = params->output_bytes == 1 ? INT8_MAX : params->output_bytes == 2 ? INT16_MAX : INT32_MAX;
    for (int32_t i = 0; i < q->count; ++i) {
        /* the reference subtracts the zero point and adds the output's in wrapping int32 arithmetic */
        const uint32_t raw = (uint32_t)load(input, params->input_bytes, i);
        const int32_t centred = (int32_t)(raw - (uint32_t)q->input_zero_point);
        const int32_t scaled = td_multiply_by_quantized_multiplier(centred, q->multiplier, q->shift);
        const int32_t value = td_clamp_i32((int32_t)((uint32_t)scaled + (uint32_t)q->output_zero_point), low, high);
        if (params->output_bytes == 1) {
            ((int8_t *)output)[i] = (int8_t)value;
        } else if (params->output_bytes == 2) {
            ((int16_t *)output)[i] = (int16_t)value;
        } else {
            ((int32_t *)output)[i] = value;
        }
    }
}
