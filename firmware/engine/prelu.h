/* PRELU: x >= zero point rescaled by input scale / output scale, below it multiplied by alpha (int8, broadcast
 * NumPy-style) and rescaled by input scale * alpha scale / output scale. int8 or int16 input and output. */
#ifndef TD_PRELU_H
#define TD_PRELU_H

#include <stdint.h>

#include "elementwise.h"

typedef struct {
    td_broadcast shape; /* strides1: the input, strides2: alpha */
    int32_t input_offset, alpha_offset, output_offset;
    int32_t identity_multiplier, identity_shift;
    int32_t alpha_multiplier, alpha_shift;
} td_prelu_params;

/* The output may share the input's memory when both have the output's shape. */
void td_prelu_s8(const td_prelu_params *params, const int8_t *input, const int8_t *alpha, int8_t *output);
void td_prelu_s16(const td_prelu_params *params, const int16_t *input, const int8_t *alpha, int16_t *output);

#endif /* TD_PRELU_H */
