/* Reference FULLY_CONNECTED: the oracle any faster Cortex-M variant must equal. */
#include "fully_connected.h"

#include <stddef.h>

#include "td_quant.h"

void td_fully_connected_s8(const td_fully_connected_params *params, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, int8_t *output)
{
    const int32_t input_depth = params->input_depth;
    const int32_t output_depth = params->output_depth;
    for (int32_t batch = 0; batch < params->batches; ++batch) {
        const int8_t *row = input + (size_t)batch * (size_t)input_depth;
        int8_t *out_row = output + (size_t)batch * (size_t)output_depth;
        for (int32_t channel = 0; channel < output_depth; ++channel) {
            const int8_t *weights = filter + (size_t)channel * (size_t)input_depth;
            int32_t acc = 0;
            for (int32_t i = 0; i < input_depth; ++i) {
                acc += ((int32_t)weights[i] + params->filter_offset) * ((int32_t)row[i] + params->input_offset);
            }
            out_row[channel] = td_accumulator_to_s8(acc, bias, channel, params->per_channel, params->multipliers,
                                                    params->shifts, params->output_offset, params->activation_min,
                                                    params->activation_max);
        }
    }
}
