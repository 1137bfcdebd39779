/* FULLY_CONNECTED for int8 activations and int8 weights (per-tensor or per-output-channel scales). */
#ifndef TD_FULLY_CONNECTED_H
#define TD_FULLY_CONNECTED_H

#include <stdint.h>

typedef struct {
    int32_t batches;       /* rows of the input, each input_depth values */
    int32_t input_depth;
    int32_t output_depth;
    int32_t input_offset;  /* minus the input zero point */
    int32_t filter_offset; /* minus the filter zero point (0 for symmetric weights) */
    int32_t output_offset; /* the output zero point */
    int32_t activation_min;
    int32_t activation_max;
    int32_t per_channel;   /* 1: multipliers/shifts hold output_depth entries, 0: one entry */
    const int32_t *multipliers;
    const int32_t *shifts;
} td_fully_connected_params;

/* filter: [output_depth][input_depth]; bias: output_depth values or NULL; output: [batches][output_depth]. */
void td_fully_connected_s8(const td_fully_connected_params *params, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, int8_t *output);

#endif /* TD_FULLY_CONNECTED_H */
