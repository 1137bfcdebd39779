/* DEPTHWISE_CONV_2D for int16 activations and symmetric int8 weights (TFLite's int16x8 mode): zero points are 0,
 * 64-bit accumulators and an int64 bias. */
#ifndef TD_DEPTHWISE_CONV_2D_S16_H
#define TD_DEPTHWISE_CONV_2D_S16_H

#include <stdint.h>

#include "depthwise_conv_2d.h"

/* filter: [filter_height][filter_width][output_depth]; bias: output_depth values or NULL. Writes its output in
 * increasing address order, each element after the reads it needs. */
void td_depthwise_conv_2d_s16(const td_depthwise_conv_2d_params *params, const int16_t *input,
                              const int8_t *filter, const int64_t *bias, int16_t *output);

#endif /* TD_DEPTHWISE_CONV_2D_S16_H */
