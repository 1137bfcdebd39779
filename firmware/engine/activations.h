/* LOGISTIC (output scale 1/256, zero point -128) and TANH (output scale 1/128, zero point 0) on int8.
 * The output may share the input's memory. */
#ifndef TD_ACTIVATIONS_H
#define TD_ACTIVATIONS_H

#include <stdint.h>

typedef struct {
    int32_t count;
    int32_t input_zero_point;
    int32_t input_range_radius; /* |x - zero point| at or beyond this saturates the output */
    int32_t input_multiplier;   /* x - zero point -> Q4.27 */
    int32_t input_left_shift;
} td_transcendental_params;

void td_logistic_s8(const td_transcendental_params *params, const int8_t *input, int8_t *output);
void td_tanh_s8(const td_transcendental_params *params, const int8_t *input, int8_t *output);

#endif /* TD_ACTIVATIONS_H */
