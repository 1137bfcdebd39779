/* SVDF, integer: int8 input and feature weights, int8 or int16 time weights and activation state (a variable
 * tensor: its memory of past feature values lives in the plan and carries over from one invoke to the next),
 * int32 bias, int8 output. Needs no scratch memory (each unit's filters are reduced as they are computed). */
#ifndef TD_SVDF_H
#define TD_SVDF_H

#include <stdint.h>

typedef struct {
    int32_t batches, input_size, filters, units, rank, memory;
    int32_t input_zero_point, state_zero_point, output_zero_point;
    int32_t feature_multiplier, feature_shift; /* input x feature weights -> activation state */
    int32_t output_multiplier, output_shift;   /* activation state x time weights -> output */
    const int8_t *feature_weights;             /* [filters][input_size] */
    const int8_t *time_weights;                /* [filters][memory] for the int8 state, else NULL */
    const int16_t *time_weights16;             /* [filters][memory] for the int16 state, else NULL */
    const int32_t *bias;                       /* [units] */
} td_svdf_params;

void td_svdf_s8(const td_svdf_params *params, const int8_t *input, int8_t *state, int8_t *output);
void td_svdf_s16_state(const td_svdf_params *params, const int8_t *input, int16_t *state, int8_t *output);

#endif /* TD_SVDF_H */
