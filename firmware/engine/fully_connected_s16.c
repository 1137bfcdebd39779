/* Reference int16x8 FULLY_CONNECTED: the arithmetic of TFLite's int16 reference kernels. */
#include "fully_connected_s16.h"

#include <stddef.h>

#include "td_int16.h"

static int64_t row_sum(const int16_t *row, const int8_t *weights, int32_t depth)
{
    int64_t acc = 0;
    for (int32_t i = 0; i < depth; ++i) {
        acc += (int64_t)((int32_t)weights[i] * (int32_t)row[i]);
    }
    return acc;
}

void td_fully_connected_s16(const td_fully_connected_params *params, const int16_t *input, const int8_t *filter,
                            const int64_t *bias, int16_t *output)
{
    const int32_t input_depth = params->input_depth;
    const int32_t output_depth = params->output_depth;
    for (int32_t batch = 0; batch < params->batches; ++batch) {
        const int16_t *row = input + (size_t)batch * (size_t)input_depth;
        int16_t *out_row = output + (size_t)batch * (size_t)output_depth;
        for (int32_t channel = 0; channel < output_depth; ++channel) {
            int64_t acc = row_sum(row, filter + (size_t)channel * (size_t)input_depth, input_depth);
            if (bias != NULL) {
                acc = (int64_t)((uint64_t)acc + (uint64_t)bias[channel]);
            }
            const int32_t q = params->per_channel ? channel : 0;
            const int32_t value =
                td_multiply_by_quantized_multiplier_i64(acc, params->multipliers[q], params->shifts[q]);
            out_row[channel] = (int16_t)td_clamp_i32(value, params->activation_min, params->activation_max);
        }
    }
}

void td_fully_connected_s16_acc32(const td_fully_connected_params *params, const int16_t *input,
                                  const int8_t *filter, const int32_t *bias, int16_t *output)
{
    const int32_t input_depth = params->input_depth;
    const int32_t output_depth = params->output_depth;
    for (int32_t batch = 0; batch < params->batches; ++batch) {
        const int16_t *row = input + (size_t)batch * (size_t)input_depth;
        int16_t *out_row = output + (size_t)batch * (size_t)output_depth;
        for (int32_t channel = 0; channel < output_depth; ++channel) {
            /* the reference sums in 32 bits here: wrap the same way */
            uint32_t acc = (uint32_t)(int32_t)row_sum(row, filter + (size_t)channel * (size_t)input_depth, input_depth);
            if (bias != NULL) {
                acc += (uint32_t)bias[channel];
            }
            const int32_t q = params->per_channel ? channel : 0;
            const int32_t value = td_multiply_by_quantized_multiplier((int32_t)acc, params->multipliers[q],
                                                                      params->shifts[q]);
            out_row[channel] = (int16_t)td_clamp_i32(value, params->activation_min, params->activation_max);
        }
    }
}
