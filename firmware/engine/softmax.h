/* SOFTMAX over the last dimension: int8 input, int8 output with scale 1/256 and zero point -128, or int16 output
 * with scale 1/65536 and zero point -32768 (the same fixed-point arithmetic). */
#ifndef TD_SOFTMAX_H
#define TD_SOFTMAX_H

#include <stdint.h>

typedef struct {
    int32_t rows;             /* product of all dimensions but the last */
    int32_t depth;            /* the last dimension */
    int32_t input_multiplier; /* beta * input scale in Q5.26 steps, as a Q31 multiplier ... */
    int32_t input_left_shift; /* ... and a left shift */
    int32_t diff_min;         /* differences to the row maximum below this contribute exp() = 0 */
} td_softmax_params;

void td_softmax_s8(const td_softmax_params *params, const int8_t *input, int8_t *output);
void td_softmax_s8_s16(const td_softmax_params *params, const int8_t *input, int16_t *output);

#endif /* TD_SOFTMAX_H */
