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
    td_window_walk at; /* taps outside the input read padding: they add nothing */
    for (int more = td_window_begin(&at, w); more; more = td_window_next(&at, w)) {
        for (int32_t oc = 0; oc < w->output_depth; ++oc) {
            int64_t acc = 0;
            for (int32_t fy = at.fy_first; fy < at.fy_end; ++fy) {
                for (int32_t fx = at.fx_first; fx < at.fx_end; ++fx) {
                    const int16_t *in = input + td_window_tap_offset(&at, w, fy, fx);
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
                          : td_accumulator32_to_s16(acc, bias32, oc, q->per_channel, q->multipliers, q->shifts,
                                                    q->activation_min, q->activation_max);
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
