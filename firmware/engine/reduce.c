/* Reference reductions: one output at a time, combining its inputs directly (no scratch memory). */
#include "reduce.h"

#include <stddef.h>

#include "td_quant.h"

TD_ALWAYS_INLINE int32_t load(const void *data, size_t index, int32_t element_bytes)
{
    return element_bytes == 1 ? ((const int8_t *)data)[index] : ((const int16_t *)data)[index];
}

TD_ALWAYS_INLINE void store(void *data, size_t index, int32_t value, int32_t element_bytes)
{
    if (element_bytes == 1) {
        ((int8_t *)data)[index] = (int8_t)td_clamp_i32(value, INT8_MIN, INT8_MAX);
    } else {
        ((int16_t *)data)[index] = (int16_t)td_clamp_i32(value, INT16_MIN, INT16_MAX);
    }
}

/* Both reductions for both element sizes: MEAN (average) or the largest value; outputs in increasing order. */
TD_ALWAYS_INLINE void reduce(const td_reduce_shape *shape, const td_mean_params *mean, const void *input,
                             void *output, int32_t element_bytes, int average)
{
    if (td_shape_is_empty(shape->kept_dims) || td_shape_is_empty(shape->reduced_dims)) {
        return;
    }
    const int32_t lowest = element_bytes == 1 ? INT8_MIN : INT16_MIN;
    int32_t kept[TD_MAX_DIMS] = {0};
    size_t position = 0;
    do {
        int32_t reduced[TD_MAX_DIMS] = {0};
        int32_t acc = average ? 0 : lowest; /* the sum, or the largest value */
        do {
            int32_t index[TD_MAX_DIMS];
            for (int d = 0; d < TD_MAX_DIMS; ++d) {
                index[d] = kept[d] + reduced[d];
            }
            const int32_t value = load(input, td_offset(index, shape->input_strides), element_bytes);
            acc = average ? acc + value : td_max_i32(acc, value);
        } while (td_next_index(reduced, shape->reduced_dims));
        if (average) {
            const int32_t centred = acc - mean->input_zero_point * mean->count;
            acc = td_multiply_by_quantized_multiplier(centred, mean->multiplier, mean->shift) +
                  mean->output_zero_point;
        }
        store(output, position++, acc, element_bytes);
    } while (td_next_index(kept, shape->kept_dims));
}

void td_mean_s8(const td_mean_params *params, const int8_t *input, int8_t *output)
{
    reduce(&params->shape, params, input, output, 1, 1);
}

void td_mean_s16(const td_mean_params *params, const int16_t *input, int16_t *output)
{
    reduce(&params->shape, params, input, output, 2, 1);
}

void td_reduce_max_s8(const td_reduce_shape *shape, const int8_t *input, int8_t *output)
{
    reduce(shape, NULL, input, output, 1, 0);
}
