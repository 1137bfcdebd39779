/* Reference int16x8 FULLY_CONNECTED: the arithmetic of TFLite's int16 reference kernels. */
#include "fully_connected_s16.h"

#include <stddef.h>

#include "td_int16.h"

/* Both bias widths (one of the two is given, or neither): the width is tested once per output element, outside
 * the sum. */
static void multiply(const td_fully_connected_params *params, const int16_t *input, const int8_t *filter,
                     const int64_t *bias64, const int32_t *bias32, int wide_bias, int16_t *output)
{
    const int32_t input_depth = params->input_depth;
    const int32_t output_depth = params->output_depth;
    for (int32_t batch = 0; batch < params->batches; ++batch) {
        const int16_t *row = input + (size_t)batch * (size_t)input_depth;
        int16_t *out_row = output + (size_t)batch * (size_t)output_depth;
        for (int32_t channel = 0; channel < output_depth; ++channel) {
            const int8_t *weights = filter + (size_t)channel * (size_t)input_depth;
            int64_t acc = 0;
            for (int32_t i = 0; i < input_depth; ++i) {
                acc += (int64_t)((int32_t)weights[i] * (int32_t)row[i]);
            }
            out_row[channel] =
                wide_bias ? td_accumulator_to_s16(acc, bias64, channel, params->per_channel, params->multipliers,
                                                  params->shifts, params->activation_min, params->activation_max)
                          : td_accumulator32_to_s16(acc, bias32, channel, params->per_channel, params->multipliers,
                                                    params->shifts, params->activation_min, params->activation_max);
        }
    }
}

void td_fully_connected_s16(const td_fully_connected_params *params, const int16_t *input, const int8_t *filter,
                            const int64_t *bias, int16_t *output)
{
    multiply(params, input, filter, bias, NULL, 1, output);
}

void td_fully_connected_s16_acc32(const td_fully_connected_params *params, const int16_t *input,
                                  const int8_t *filter, const int32_t *bias, int16_t *output)
{
    multiply(params, input, filter, NULL, bias, 0, output); /* the reference sums in 32 bits here: wraps alike */
}
