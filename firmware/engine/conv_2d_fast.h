/* CONV_2D for the Cortex-M4 DSP extension: bit-exact with td_conv_2d_s8 (conv_2d.c), the oracle. */
#ifndef TD_CONV_2D_FAST_H
#define TD_CONV_2D_FAST_H

#include <stdint.h>

#include "td_dot.h"
#include "td_window.h"

#define TD_CONV_FAST_PATCH_MAX 64  /* bytes of one im2col patch on the stack */
#define TD_CONV_FAST_ROWS_MAX 8    /* filter rows read straight from the input */

typedef struct {
    td_window window;
    td_fast_requant requant;
    int32_t groups;   /* weight words per channel / 2: ceil(filter_height * filter_width * input_depth / 4) */
    /* 0: each filter row is read straight from the input (input_depth % 4 == 0, no column dilation);
     * otherwise the bytes of the im2col patch (a multiple of 4) each output pixel gathers first. */
    int32_t patch_bytes;
    const uint32_t *weights; /* widened and blocked as td_dot.h describes, in [height][width][input] order */
} td_conv_2d_fast_params;

/* Memory contract as td_conv_2d_s8: output elements are written in increasing address order, each block of
 * channels after the input reads it needs (window_overlap_limit in tinydeploy/engine/ops/common.py). */
void td_conv_2d_fast_s8(const td_conv_2d_fast_params *params, const int8_t *input, int8_t *output);

#endif /* TD_CONV_2D_FAST_H */
