/* LEAKY_RELU on int8 or int16: x >= zero point is rescaled by input scale / output scale, below it by
 * alpha * input scale / output scale (a negative alpha by its magnitude, then negated, as the reference does). */
#ifndef TD_LEAKY_RELU_H
#define TD_LEAKY_RELU_H

#include <stdint.h>

typedef struct {
    int32_t count;
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t identity_multiplier, identity_shift;
    int32_t alpha_multiplier, alpha_shift; /* of |alpha| */
    int32_t alpha_negative;                /* 1: negate the scaled value */
} td_leaky_relu_params;

/* The output may share the input's memory. */
void td_leaky_relu_s8(const td_leaky_relu_params *params, const int8_t *input, int8_t *output);
void td_leaky_relu_s16(const td_leaky_relu_params *params, const int16_t *input, int16_t *output);

#endif /* TD_LEAKY_RELU_H */
