/* Reference QUANTIZE and DEQUANTIZE: float division and rounding exactly as the reference does them. */
#include "quantize.h"

#include "td_quant.h"

void td_quantize_f32_s8(const td_affine_params *params, const float *input, int8_t *output)
{
    for (int32_t i = 0; i < params->count; ++i) {
        output[i] = (int8_t)td_quantize_f32(input[i], params->scale, params->zero_point, INT8_MIN, INT8_MAX);
    }
}

void td_requantize_s8(const td_requantize_params *params, const int8_t *input, int8_t *output)
{
    for (int32_t i = 0; i < params->count; ++i) {
        const int32_t value = td_multiply_by_quantized_multiplier((int32_t)input[i] - params->input_zero_point,
                                                                  params->multiplier, params->shift) +
                              params->output_zero_point;
        output[i] = (int8_t)td_clamp_i32(value, INT8_MIN, INT8_MAX);
    }
}

void td_dequantize_s8_f32(const td_affine_params *params, const int8_t *input, float *output)
{
    for (int32_t i = 0; i < params->count; ++i) {
        output[i] = params->scale * (float)((int32_t)input[i] - params->zero_point);
    }
}
