/* FULLY_CONNECTED for the Cortex-M4 DSP extension: bit-exact with td_fully_connected_s8, the oracle. */
#ifndef TD_FULLY_CONNECTED_FAST_H
#define TD_FULLY_CONNECTED_FAST_H

#include <stdint.h>

#include "td_dot.h"

typedef struct {
    int32_t batches; /* rows of the input, each input_depth values */
    int32_t input_depth;
    int32_t output_depth;
    td_mat_quant quant;     /* symmetric weights only */
    int32_t groups;         /* ceil(input_depth / 4) */
    const int8_t *weights;  /* int8, channels4 layout (td_dot.h) */
    const int32_t *records; /* channels4 records */
} td_fully_connected_fast_params;

/* scratch: 8 * groups bytes for one row's pairs, from the planner, or NULL to take them on the stack (the
 * generator does that only up to TD_STACK_SCRATCH_MAX). */
void td_fully_connected_fast_s8(const td_fully_connected_fast_params *params, const int8_t *input,
                                int32_t *scratch, int8_t *output);

#endif /* TD_FULLY_CONNECTED_FAST_H */
