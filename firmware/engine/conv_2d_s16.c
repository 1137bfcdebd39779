/* Reference int16x8 CONV_2D (NHWC): the arithmetic of TFLite's int16 reference kernel. */
#include "conv_2d_s16.h"

#include <stddef.h>

#include "td_int16.h"

/* Both bias widths (one of the two is given, or neither): the width is tested once per output element, outside
 * the sum. Output elements are written in increasing address order. */
static void convolve(const td_conv_2d_params *params, const int16_t *input, const int8_t *filter,
                     const int64_t *bias64, const int32_t *bias32, int wide_bias, int16_t *output)
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
                    int64_t acc = 0;
                    for (int32_t fy = fy_first; fy < fy_end; ++fy) {
                        for (int32_t fx = fx_first; fx < fx_end; ++fx) {
                            const int16_t *in = input + td_pixel_offset(b, y0 + fy * w->dilation_height,
                                                                        x0 + fx * w->dilation_width, w->input_height,
                                                                        w->input_width, w->input_depth);
                            const int8_t *f = filter + td_pixel_offset(oc, fy, fx, w->filter_height, w->filter_width,
                                                                       w->input_depth);
                            for (int32_t ic = 0; ic < w->input_depth; ++ic) {
                                acc += (int64_t)((int32_t)f[ic] * (int32_t)in[ic]);
                            }
                        }
                    }
                    output[position++] =
                        wide_bias ? td_accumulator_to_s16(acc, bias64, oc, q->per_channel, q->multipliers, q->shifts,
                                                          q->activation_min, q->activation_max)
                                  : td_accumulator32_to_s16(acc, bias32, oc, q->per_channel, q->multipliers,
                                                            q->shifts, q->activation_min, q->activation_max);
                }
            }
        }
    }
}

void td_conv_2d_s16(const td_conv_2d_params *params, const int16_t *input, const int8_t *filter,
                    const int64_t *bias, int16_t *output)
{
    convolve(params, input, filter, bias, NULL, 1, output);
}

void td_conv_2d_s16_acc32(const td_conv_2d_params *params, const int16_t *input, const int8_t *filter,
                          const int32_t *bias, int16_t *output)
{
    convolve(params, input, filter, NULL, bias, 0, output); /* the reference sums in 32 bits here: wraps alike */
}
