/* Reference CONV_2D (NHWC): the oracle any faster Cortex-M variant must equal. */
#include "conv_2d.h"

#include <stddef.h>

#include "td_quant.h"

void td_conv_2d_s8(const td_conv_2d_params *params, const int8_t *input, const int8_t *filter, const int32_t *bias,
                   int8_t *output)
{
    const td_window *w = &params->window;
    const td_requant *q = &params->requant;
    for (int32_t b = 0; b < w->batches; ++b) {
        for (int32_t out_y = 0; out_y < w->output_height; ++out_y) {
            const int32_t y0 = out_y * w->stride_height - w->pad_top;
            for (int32_t out_x = 0; out_x < w->output_width; ++out_x) {
                const int32_t x0 = out_x * w->stride_width - w->pad_left;
                for (int32_t oc = 0; oc < w->output_depth; ++oc) {
                    int32_t acc = 0;
                    for (int32_t fy = 0; fy < w->filter_height; ++fy) {
                        const int32_t in_y = y0 + fy * w->dilation_height;
                        if (in_y < 0 || in_y >= w->input_height) {
                            continue; /* padding holds the zero point: contributes nothing */
                        }
                        for (int32_t fx = 0; fx < w->filter_width; ++fx) {
                            const int32_t in_x = x0 + fx * w->dilation_width;
                            if (in_x < 0 || in_x >= w->input_width) {
                                continue;
                            }
                            const int8_t *in = input +
                                (((size_t)b * (size_t)w->input_height + (size_t)in_y) * (size_t)w->input_width +
                                 (size_t)in_x) * (size_t)w->input_depth;
                            const int8_t *f = filter +
                                (((size_t)oc * (size_t)w->filter_height + (size_t)fy) * (size_t)w->filter_width +
                                 (size_t)fx) * (size_t)w->input_depth;
                            for (int32_t ic = 0; ic < w->input_depth; ++ic) {
                                acc += (int32_t)f[ic] * ((int32_t)in[ic] + q->input_offset);
                            }
                        }
                    }
                    output[(((size_t)b * (size_t)w->output_height + (size_t)out_y) * (size_t)w->output_width +
                            (size_t)out_x) * (size_t)w->output_depth + (size_t)oc] =
                        td_accumulator_to_s8(acc, bias, oc, q->per_channel, q->multipliers, q->shifts,
                                             q->output_offset, q->activation_min, q->activation_max);
                }
            }
        }
    }
}
