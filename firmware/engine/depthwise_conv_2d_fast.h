/* DEPTHWISE_CONV_2D for the Cortex-M4 DSP extension, bit-exact with depthwise_conv_2d.c (the oracle).
 *
 * The generator prepares, in flash (tinydeploy/engine/ops/depthwise_conv_2d.py):
 * - weights, int8: the first `blocks` blocks of four channels (depth multiplier 1), per block per tap (row-major)
 *   the four channels' weights as one word, the order SXTB16 splits four input channels; then every remaining
 *   channel (all of them when the depth multiplier is not 1): per tap one weight.
 * - records (td_dot.h): per block four biases, then per channel {shifts, multiplier, round}; per remaining channel
 *   {bias, shifts, multiplier, round}. The biases include input_offset * (sum of the channel's weights), so the
 *   kernel multiplies raw inputs; a tap outside the input reads `padding` (input zero points), which makes its
 *   (x + input_offset) * w exactly 0, as the reference's skipped tap.
 * Every tap runs for every pixel (no clipping), so the sums equal the reference's bit for bit.
 *
 * With `scratch_bytes` (3x3 windows, folded requantization) the kernel first widens the blocks' weights once into
 * scratch, each channel's weights and bias scaled by 2^up (td_dot.h; the generator proved they fit), so a tap
 * costs one LDRD of weights and an output no shift: per block four scaled biases, then per tap (c0, c2) and
 * (c1, c3) as int16 pairs (TD_DW_SCRATCH_BLOCK_WORDS). */
#ifndef TD_DEPTHWISE_CONV_2D_FAST_H
#define TD_DEPTHWISE_CONV_2D_FAST_H

#include <stdint.h>

#include "td_dot.h"
#include "td_window.h"

#define TD_DW_FAST_MAX_TAPS 64 /* filter height x width the fast kernel takes (a pointer per tap on the stack) */
#define TD_DW_SCRATCH_BLOCK_WORDS 22 /* 4 biases + 9 taps x 2 words */

typedef struct {
    td_window window;
    int32_t depth_multiplier;
    td_mat_quant quant; /* quant.input_offset is already in the biases */
    int32_t blocks;     /* channels done four at a time; 0 unless the depth multiplier is 1 */
    const int8_t *weights;
    const int32_t *records;
    const int8_t *padding; /* input_depth bytes of the input zero point, rounded up to a whole word */
    int32_t scratch_bytes; /* 0, or 4 * TD_DW_SCRATCH_BLOCK_WORDS * blocks for the widened, scaled weights */
} td_depthwise_conv_2d_fast_params;

/* Same memory contract as td_depthwise_conv_2d_s8: one output pixel at a time, its channels in increasing
 * order, each block of four after the reads it needs, so the planner may overlap the output with the input. */
/* scratch: scratch_bytes from the planner, or NULL to take them on the stack (up to TD_STACK_SCRATCH_MAX). */
void td_depthwise_conv_2d_fast_s8(const td_depthwise_conv_2d_fast_params *params, const int8_t *input,
                                  int32_t *scratch, int8_t *output);

#endif /* TD_DEPTHWISE_CONV_2D_FAST_H */
