/* DEPTHWISE_CONV_2D for the Cortex-M4 DSP extension, bit-exact with depthwise_conv_2d.c (the oracle).
 *
 * The generator prepares everything in flash (tinydeploy/engine/ops/depthwise_conv_2d.py):
 * - weights: 32-bit words of two int16 values, each weight scaled by 2^(left_shift + 1) of its channel. The first
 *   vector_channels channels come in blocks of four (c0..c3): per block, per tap (row-major), the words
 *   (w_c0, w_c2) and (w_c1, w_c3), the order SXTB16 splits four input bytes. The remaining channels follow one by
 *   one: per channel, one word per tap holding the scaled weight.
 * - bias: output_depth int32 values, scaled like the weights (zeros when the model has no bias).
 * - requant: per output channel three int32 values {multiplier, round, shift}: the output is
 *   (2 * y - (y < 0) + round) >> shift with y = SMMULR(acc, multiplier), round = 2^s + output_offset * 2^(s + 1)
 *   and shift = s + 1 for the reference's right shift s. That equals the reference's double-rounding requantization
 *   plus the output offset exactly when no sum overflows, which the generator proves per layer before choosing this
 *   kernel.
 * - padding: input_depth bytes of the input zero point, read for 3x3 taps outside the input (they add 0). */
#ifndef TD_DEPTHWISE_CONV_2D_FAST_H
#define TD_DEPTHWISE_CONV_2D_FAST_H

#include <stdint.h>

#include "td_window.h"

typedef struct {
    td_window window;
    int32_t depth_multiplier;
    int32_t input_offset; /* minus the input zero point */
    int32_t activation_min;
    int32_t activation_max;
    int32_t vector_channels; /* leading channels done four at a time: a multiple of 4, 0 unless depth_multiplier 1 */
} td_depthwise_conv_2d_fast_params;

/* Same memory contract as td_depthwise_conv_2d_s8: one output pixel at a time, its channels in increasing order,
 * each after the reads it needs, so the planner may overlap the output with the input it consumes. */
void td_depthwise_conv_2d_fast_s8(const td_depthwise_conv_2d_fast_params *params, const int8_t *input,
                                  const int32_t *weights, const int32_t *bias, const int32_t *requant,
                                  const int8_t *padding, int8_t *output);

#endif /* TD_DEPTHWISE_CONV_2D_FAST_H */
