/* SOFTMAX over the last dimension of int16 input (zero point 0) to int16 output (scale 1/32768, zero point 0)
 * through TFLite's exp and 1/(1+x) lookup tables. (int8 input to int16 output is in softmax.h.) */
#ifndef TD_SOFTMAX_S16_H
#define TD_SOFTMAX_S16_H

#include <stdint.h>

#define TD_SOFTMAX_LUT_SIZE 513 /* 512 interpolation intervals plus their end */

typedef struct {
    int32_t rows;             /* product of all dimensions but the last */
    int32_t depth;            /* the last dimension */
    int32_t input_multiplier; /* input scale * beta mapped so that a difference of -10 reaches -65535 ... */
    int32_t input_shift;      /* ... with this power-of-two exponent */
    const int16_t *exp_table; /* exp(x) on [-10, 0], TD_SOFTMAX_LUT_SIZE values in Q0.15 */
    const int16_t *reciprocal_table; /* 1 / (1 + x) on [0, 1], TD_SOFTMAX_LUT_SIZE values in Q0.15 */
} td_softmax_s16_params;

/* td_softmax_s16 reads each element before it writes it: the output may share the input's memory. */
void td_softmax_s16(const td_softmax_s16_params *params, const int16_t *input, int16_t *output);

#endif /* TD_SOFTMAX_S16_H */
