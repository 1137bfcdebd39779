/* Reference pooling (NHWC), int8 and int16: windows clipped to the input; padding is not counted in averages. */
#include "pooling.h"

#include <stddef.h>

#include "td_quant.h"

TD_ALWAYS_INLINE int32_t load(const void *data, size_t index, int32_t element_bytes)
{
    return element_bytes == 1 ? ((const int8_t *)data)[index] : ((const int16_t *)data)[index];
}

/* Both pools for both element sizes; output elements are written in increasing address order. */
TD_ALWAYS_INLINE void pool(const td_pool_params *params, const void *input, void *output, int32_t element_bytes,
                           int average)
{
    const td_window *w = &params->window; /* dilation 1 */
    const int32_t lowest = element_bytes == 1 ? INT8_MIN : INT16_MIN;
    size_t position = 0;
    td_window_walk at;
    for (int more = td_window_begin(&at, w); more; more = td_window_next(&at, w)) {
        const int32_t count = (at.fy_end - at.fy_first) * (at.fx_end - at.fx_first);
        for (int32_t c = 0; c < w->output_depth; ++c) {
            int32_t acc = average ? 0 : lowest; /* the sum, or the largest value */
            for (int32_t fy = at.fy_first; fy < at.fy_end; ++fy) {
                for (int32_t fx = at.fx_first; fx < at.fx_end; ++fx) {
                    const int32_t value = load(input, td_window_tap_offset(&at, w, fy, fx) + (size_t)c, element_bytes);
                    acc = average ? acc + value : td_max_i32(acc, value);
                }
            }
            if (average) { /* round half away from zero */
                acc = count > 0 ? (acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count) : 0;
            }
            const int32_t result = td_clamp_i32(acc, params->activation_min, params->activation_max);
            if (element_bytes == 1) {
                ((int8_t *)output)[position++] = (int8_t)result;
            } else {
                ((int16_t *)output)[position++] = (int16_t)result;
            }
        }
    }
}

void td_average_pool_2d_s8(const td_pool_params *params, const int8_t *input, int8_t *output)
{
    pool(params, input, output, 1, 1);
}

void td_max_pool_2d_s8(const td_pool_params *params, const int8_t *input, int8_t *output)
{
    pool(params, input, output, 1, 0);
}

void td_average_pool_2d_s16(const td_pool_params *params, const int16_t *input, int16_t *output)
{
    pool(params, input, output, 2, 1);
}

void td_max_pool_2d_s16(const td_pool_params *params, const int16_t *input, int16_t *output)
{
    pool(params, input, output, 2, 0);
}
