/* HARD_SWISH on int8: x * relu6(x + 3) / 6 in TFLite's 16-bit fixed-point arithmetic (the input on a finer
 * "hires" scale, a "reluish" gate in [0, 1] on 2^-15 steps, one saturating product). */
#ifndef TD_HARD_SWISH_H
#define TD_HARD_SWISH_H

#include <stdint.h>

typedef struct {
    int32_t count;
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t reluish_multiplier;  /* Q15 (int16) */
    int32_t reluish_exponent;    /* power-of-two exponent of the reluish rescale */
    int32_t output_multiplier;   /* Q15 (int16) */
    int32_t output_exponent;     /* <= 0 */
} td_hard_swish_params;

/* The output may share the input's memory. */
void td_hard_swish_s8(const td_hard_swish_params *params, const int8_t *input, int8_t *output);

#endif /* TD_HARD_SWISH_H */
