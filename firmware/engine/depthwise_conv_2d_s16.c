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
            for (int32_t out_x = 0; out_x < w->output_width; ++out_x) {
                const int32_t x0 = out_x * w->stride_width - w->pad_left;
                for (int32_t oc = 0; oc < w->output_depth; ++oc) {
                    const int32_t ic = oc / params->depth_multiplier;
                    int64_t acc = 0;
                    for (int32_t fy = 0; fy < w->filter_height; ++fy) {
                        const int32_t in_y = y0 + fy * w->dilation_height;
                        if (in_y < 0 || in_y >= w->input_height) {
                            continue;
                        }
                        for (int32_t fx = 0; fx < w->filter_width; ++fx) {
                            const int32_t in_x = x0 + fx * w->dilation_width;
                            if (in_x < 0 || in_x >= w->input_width) {
                                continue;
                            }
                            const int32_t value = input[(((size_t)b * (size_t)w->input_height + (size_t)in_y) *
                                                         (size_t)w->input_width + (size_t)in_x) *
                                                        (size_t)w->input_depth + (size_t)ic];
                            const int32_t weight = filter[((size_t)fy * (size_t)w->filter_width + (size_t)fx) *
                                                          (size_t)w->output_depth + (size_t)oc];
                            acc += (int64_t)value * (int64_t)weight;
                        }
                    }
                    if (bias != NULL) {
                        acc = (int64_t)((uint64_t)acc + (uint64_t)bias[oc]);
                    }
                    const int32_t c = q->per_channel ? oc : 0;
                    const int32_t scaled =
                        td_multiply_by_quantized_multiplier_i64(acc, q->multipliers[c], q->shifts[c]);
                    output[position++] = (int16_t)td_clamp_i32(scaled, q->activation_min, q->activation_max);
                }
            }
        }
    }
}
