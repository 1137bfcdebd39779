/* CONV_2D for the Cortex-M4 DSP extension: bit-exact with td_conv_2d_s8 (conv_2d.c), the oracle. */
#ifndef TD_CONV_2D_FAST_H
#define TD_CONV_2D_FAST_H

#include <stdint.h>

#include "td_dot.h"
#include "td_window.h"

typedef struct {
    td_window window;
    td_mat_quant quant;
    int32_t groups;  /* ceil(filter_height * filter_width * input_depth / 4) */
    int32_t pixels4; /* 1: four pixels per pass (td_dot.h pixels4 layout); 0: one pixel (channels4 layout) */
    /* Bytes of scratch: the widened inputs (32 * groups with pixels4, else 8 * groups), plus 4 * groups for an
     * im2col patch when input_depth % 4 != 0. Given by the planner, or taken on the stack when the call passes
     * NULL (the generator does that only up to TD_STACK_SCRATCH_MAX). */
    int32_t scratch_bytes;
    const int8_t *weights;   /* int8, [out][height][width][in] order, laid out as td_dot.h describes */
    const int32_t *records;  /* per output channel (td_dot.h) */
    int32_t channels;        /* output channels with records (pixels4: all of them) */
} td_conv_2d_fast_params;

/* Memory contract as td_conv_2d_s8 and more: each pass first reads (widens) the receptive fields of its pixels,
 * then writes their outputs, passes in increasing pixel order, so an output element is written after every read
 * the reference kernel makes before writing it (window_overlap_limit in tinydeploy/engine/ops/common.py). */
void td_conv_2d_fast_s8(const td_conv_2d_fast_params *params, const int8_t *input, int32_t *scratch,
                        int8_t *output);

#endif /* TD_CONV_2D_FAST_H */
