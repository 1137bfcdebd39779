/* Reference int16 pooling (NHWC): windows clipped to the input; padding is not counted in averages. */
#include "pooling_s16.h"

#include <stddef.h>

#include "td_quant.h"

void td_average_pool_2d_s16(const td_pool_params *params, const int16_t *input, int16_t *output)
{
    const td_window *w = &params->window;
    for (int32_t b = 0; b < w->batches; ++b) {
        for (int32_t out_y = 0; out_y < w->output_height; ++out_y) {
            const int32_t y0 = out_y * w->stride_height - w->pad_top;
            const int32_t fy_start = td_max_i32(0, -y0);
            const int32_t fy_end = td_min_i32(w->filter_height, w->input_height - y0);
            for (int32_t out_x = 0; out_x < w->output_width; ++out_x) {
                const int32_t x0 = out_x * w->stride_width - w->pad_left;
                const int32_t fx_start = td_max_i32(0, -x0);
                const int32_t fx_end = td_min_i32(w->filter_width, w->input_width - x0);
                const int32_t count = (fy_end - fy_start) * (fx_end - fx_start);
                for (int32_t c = 0; c < w->output_depth; ++c) {
                    int32_t acc = 0;
                    for (int32_t fy = fy_start; fy < fy_end; ++fy) {
                        for (int32_t fx = fx_start; fx < fx_end; ++fx) {
                            acc += input[(((size_t)b * (size_t)w->input_height + (size_t)(y0 + fy)) *
                                          (size_t)w->input_width + (size_t)(x0 + fx)) * (size_t)w->input_depth +
                                         (size_t)c];
                        }
                    }
                    int32_t average = 0;
                    if (count > 0) { /* round half away from zero */
                        average = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    output[(((size_t)b * (size_t)w->output_height + (size_t)out_y) * (size_t)w->output_width +
                            (size_t)out_x) * (size_t)w->output_depth + (size_t)c] =
                        (int16_t)td_clamp_i32(average, params->activation_min, params->activation_max);
                }
            }
        }
    }
}

void td_max_pool_2d_s16(const td_pool_params *params, const int16_t *input, int16_t *output)
{
    const td_window *w = &params->window;
    for (int32_t b = 0; b < w->batches; ++b) {
        for (int32_t out_y = 0; out_y < w->output_height; ++out_y) {
            const int32_t y0 = out_y * w->stride_height - w->pad_top;
            const int32_t fy_start = td_max_i32(0, -y0);
            const int32_t fy_end = td_min_i32(w->filter_height, w->input_height - y0);
            for (int32_t out_x = 0; out_x < w->output_width; ++out_x) {
                const int32_t x0 = out_x * w->stride_width - w->pad_left;
                const int32_t fx_start = td_max_i32(0, -x0);
                const int32_t fx_end = td_min_i32(w->filter_width, w->input_width - x0);
                for (int32_t c = 0; c < w->output_depth; ++c) {
                    int32_t largest = INT16_MIN;
                    for (int32_t fy = fy_start; fy < fy_end; ++fy) {
                        for (int32_t fx = fx_start; fx < fx_end; ++fx) {
                            largest = td_max_i32(largest,
                                                 input[(((size_t)b * (size_t)w->input_height + (size_t)(y0 + fy)) *
                                                        (size_t)w->input_width + (size_t)(x0 + fx)) *
                                                       (size_t)w->input_depth + (size_t)c]);
                        }
                    }
                    output[(((size_t)b * (size_t)w->output_height + (size_t)out_y) * (size_t)w->output_width +
                            (size_t)out_x) * (size_t)w->output_depth + (size_t)c] =
                        (int16_t)td_clamp_i32(largest, params->activation_min, params->activation_max);
                }
            }
        }
    }
}
