/* FULLY_CONNECTED for the Cortex-M4 DSP extension: bit-exact with td_fully_connected_s8, the oracle. */
#ifndef TD_FULLY_CONNECTED_FAST_H
#define TD_FULLY_CONNECTED_FAST_H

#include <stdint.h>

#include "td_dot.h"

typedef struct {
    int32_t batches; /* rows of the input, each input_depth values */
    int32_t input_depth;
    int32_t output_depth;
    td_fast_requant requant; /* symmetric weights only */
    const uint32_t *weights; /* widened and blocked as td_dot.h describes */
} td_fully_connected_fast_params;

void td_fully_connected_fast_s8(const td_fully_connected_fast_params *params, const int8_t *input, int8_t *output);

#endif /* TD_FULLY_CONNECTED_FAST_H */
