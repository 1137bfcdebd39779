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
    td_window_walk at; /* taps outside the input read padding: they add nothing */
    for (int more = td_window_begin(&at, w); more; more = td_window_next(&at, w)) {
        for (int32_t oc = 0; oc < w->output_depth; ++oc) {
            const int32_t ic = oc / params->depth_multiplier;
            int64_t acc = 0;
            for (int32_t fy = at.fy_first; fy < at.fy_end; ++fy) {
                for (int32_t fx = at.fx_first; fx < at.fx_end; ++fx) {
                    const int32_t value = input[td_window_tap_offset(&at, w, fy, fx) + (size_t)ic];
                    const int32_t weight =
                        filter[td_pixel_offset(0, fy, fx, w->filter_height, w->filter_width, w->output_depth) +
                               (size_t)oc];
                    acc += (int64_t)value * (int64_t)weight;
                }
            }
            output[position++] = td_accumulator_to_s16(acc, bias, oc, q->per_channel, q->multipliers, q->shifts,
                                                       q->activation_min, q->activation_max);
        }
    }
}
