/* Reference MEAN: one output at a time, summing its inputs directly (no scratch memory). */
#include "reduce.h"

#include <stddef.h>

#include "td_quant.h"

void td_mean_s8(const td_mean_params *params, const int8_t *input, int8_t *output)
{
    if (td_shape_is_empty(params->kept_dims) || td_shape_is_empty(params->reduced_dims)) {
        return;
    }
    int32_t kept[TD_MAX_DIMS] = {0};
    size_t position = 0;
    do {
        int32_t reduced[TD_MAX_DIMS] = {0};
        int32_t sum = 0;
        do {
            int32_t index[TD_MAX_DIMS];
            for (int d = 0; d < TD_MAX_DIMS; ++d) {
                index[d] = kept[d] + reduced[d];
            }
            sum += input[td_offset(index, params->input_strides)];
        } while (td_next_index(reduced, params->reduced_dims));
        const int32_t centred = sum - params->input_zero_point * params->count;
        const int32_t value = td_multiply_by_quantized_multiplier(centred, params->multiplier, params->shift) +
                              params->output_zero_point;
        output[position++] = (int8_t)td_clamp_i32(value, INT8_MIN, INT8_MAX);
    } while (td_next_index(kept, params->kept_dims));
}
