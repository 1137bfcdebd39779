/* LOGISTIC and TANH on int16 (zero points 0; output scale 2^-15): the input rescaled to 1/(3 * 4096) units, then
 * TFLite's sigmoid table interpolated (td_int16.h; tanh(x) = 2 sigmoid(2x) - 1 reads the same table). */
#ifndef TD_ACTIVATIONS_S16_H
#define TD_ACTIVATIONS_S16_H

#include <stdint.h>

typedef struct {
    int32_t count;
    int32_t input_multiplier; /* at most 32767 */
    int32_t input_shift;      /* rounding right shift after the multiply */
} td_transcendental_s16_params;

/* The output may share the input's memory. */
void td_logistic_s16(const td_transcendental_s16_params *params, const int16_t *input, int16_t *output);
void td_tanh_s16(const td_transcendental_s16_params *params, const int16_t *input, int16_t *output);

#endif /* TD_ACTIVATIONS_S16_H */
