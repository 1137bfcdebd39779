/* Reference DEPTHWISE_CONV_2D (NHWC): the oracle any faster Cortex-M variant must equal. */
#include "depthwise_conv_2d.h"

#include <stddef.h>

#include "td_quant.h"

void td_depthwise_conv_2d_s8(const td_depthwise_conv_2d_params *params, const int8_t *input, const int8_t *filter,
                             const int32_t *bias, int8_t *output)
{
    const td_window *w = &params->window;
    const td_requant *q = &params->requant;
    size_t position = 0;
    td_window_walk at; /* taps outside the input read padding, which holds the zero point: they add nothing */
    for (int more = td_window_begin(&at, w); more; more = td_window_next(&at, w)) {
        for (int32_t oc = 0; oc < w->output_depth; ++oc) {
            const int32_t ic = oc / params->depth_multiplier;
            int32_t acc = 0;
            for (int32_t fy = at.fy_first; fy < at.fy_end; ++fy) {
                for (int32_t fx = at.fx_first; fx < at.fx_end; ++fx) {
                    const int32_t value = input[td_window_tap_offset(&at, w, fy, fx) + (size_t)ic];
                    const int32_t weight =
                        filter[td_pixel_offset(0, fy, fx, w->filter_height, w->filter_width, w->output_depth) +
                               (size_t)oc];
                    acc += weight * (value + q->input_offset);
                }
            }
            output[position++] = td_accumulator_to_s8(acc, bias, oc, q->per_channel, q->multipliers, q->shifts,
                                                      q->output_offset, q->activation_min, q->activation_max);
        }
    }
}
