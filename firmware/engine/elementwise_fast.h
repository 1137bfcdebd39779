/* ADD of two int8 tensors of the output's shape, bit-exact with td_add_s8 (elementwise.c), the oracle.
 *
 * Each input's rescaling to the common scale depends only on its int8 value, so the kernel tabulates it once per
 * call (256 int32 per input, computed with the reference arithmetic); an element then costs two table reads, an
 * add and the output requantization, in td_dot.h's folded form where the generator proved it exact. */
#ifndef TD_ELEMENTWISE_FAST_H
#define TD_ELEMENTWISE_FAST_H

#include <stdint.h>

#include "td_dot.h"

#define TD_ADD_FAST_SCRATCH_BYTES 2048 /* the two tables */

typedef struct {
    int32_t count; /* elements */
    int32_t input1_offset, input2_offset;
    int32_t left_shift;
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    td_mat_quant quant;      /* output offset, clamp, folded; input_offset unused */
    int32_t output_shifts;   /* up | right << 8, as td_dot.h records */
    int32_t output_multiplier;
    int32_t output_round;
} td_add_fast_params;

/* scratch: TD_ADD_FAST_SCRATCH_BYTES from the planner, or NULL to take them on the stack. The output may be
 * either input (each element is read before it is written). */
void td_add_fast_s8(const td_add_fast_params *params, const int8_t *input1, const int8_t *input2,
                    int32_t *scratch, int8_t *output);

#endif /* TD_ELEMENTWISE_FAST_H */
