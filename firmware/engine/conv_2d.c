/* Reference CONV_2D (NHWC): the oracle any faster Cortex-M variant must equal. */
#include "conv_2d.h"

#include <stddef.h>

#include "td_quant.h"

void td_conv_2d_s8(const td_conv_2d_params *params, const int8_t *input, const int8_t *filter, const int32_t *bias,
                   int8_t *output)
{
    const td_window *w = &params->window;
    const td_requant *q = &params->requant;
    size_t position = 0;
    for (int32_t b = 0; b < w->batches; ++b) {
        for (int32_t out_y = 0; out_y < w->output_height; ++out_y) {
            const int32_t y0 = out_y * w->stride_height - w->pad_top;
            int32_t fy_first, fy_end; /* taps outside read padding, which holds the zero point: they add nothing */
            td_window_taps(y0, w->filter_height, w->dilation_height, w->input_height, &fy_first, &fy_end);
            for (int32_t out_x = 0; out_x < w->output_width; ++out_x) {
                const int32_t x0 = out_x * w->stride_width - w->pad_left;
                int32_t fx_first, fx_end;
                td_window_taps(x0, w->filter_width, w->dilation_width, w->input_width, &fx_first, &fx_end);
                for (int32_t oc = 0; oc < w->output_depth; ++oc) {
                    int32_t acc = 0;
                    for (int32_t fy = fy_first; fy < fy_end; ++fy) {
                        for (int32_t fx = fx_first; fx < fx_end; ++fx) {
                            const int8_t *in = input + td_pixel_offset(b, y0 + fy * w->dilation_height,
                                                                       x0 + fx * w->dilation_width, w->input_height,
                                                                       w->input_width, w->input_depth);
                            const int8_t *f = filter + td_pixel_offset(oc, fy, fx, w->filter_height, w->filter_width,
                                                                       w->input_depth);
                            for (int32_t ic = 0; ic < w->input_depth; ++ic) {
                                acc += (int32_t)f[ic] * ((int32_t)in[ic] + q->input_offset);
                            }
                        }
                    }
                    output[position++] = td_accumulator_to_s8(acc, bias, oc, q->per_channel, q->multipliers,
                                                              q->shifts, q->output_offset, q->activation_min,
                                                              q->activation_max);
                }
            }
        }
    }
}
