/* Reference int16x8 DEPTHWISE_CONV_2D (NHWC): the arithmetic of TFLite's int16 reference kernel. */
#include "depthwise_conv_2d_s16.h"

#include <stddef.h>

#include "td_int16.h"

void td_depthwise_conv_2d_s16(const td_depthwise_conv_2d_params *params, const int16_t *input,
                              const int8_t *filter, const int64_t *bias, int16_t *output)
{
    const td_window *w = &params->window;
    const td_requant *q = &params->requant;
    size_t position = 0;
    for (int32_t b = 0; b < w->batches; ++b) {
        for (int32_t out_y = 0; out_y < w->output_height; ++out_y) {
            const int32_t y0 = out_y * w->stride_height - w->pad_top;
            int32_t fy_first, fy_end; /* the other taps read padding: they add nothing */
            td_window_taps(y0, w->filter_height, w->dilation_height, w->input_height, &fy_first, &fy_end);
            for (int32_t out_x = 0; out_x < w->output_width; ++out_x) {
                const int32_t x0 = out_x * w->stride_width - w->pad_left;
                int32_t fx_first, fx_end;
                td_window_taps(x0, w->filter_width, w->dilation_width, w->input_width, &fx_first, &fx_end);
                for (int32_t oc = 0; oc < w->output_depth; ++oc) {
                    const int32_t ic = oc / params->depth_multiplier;
                    int64_t acc = 0;
                    for (int32_t fy = fy_first; fy < fy_end; ++fy) {
                        for (int32_t fx = fx_first; fx < fx_end; ++fx) {
                            const int32_t value = input[td_pixel_offset(b, y0 + fy * w->dilation_height,
                                                                        x0 + fx * w->dilation_width, w->input_height,
                                                                        w->input_width, w->input_depth) + (size_t)ic];
                            const int32_t weight =
                                filter[td_pixel_offset(0, fy, fx, w->filter_height, w->filter_width, w->output_depth) +
                                       (size_t)oc];
                            acc += (int64_t)value * (int64_t)weight;
                        }
                    }
                    output[position++] = td_accumulator_to_s16(acc, bias, oc, q->per_channel, q->multipliers,
                                                               q->shifts, q->activation_min, q->activation_max);
                }
            }
        }
    }
}
