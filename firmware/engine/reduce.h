/* MEAN over any set of axes of an int8 tensor: an integer sum, one fixed-point rescale that folds in the
 * division by the element count (the multiplier is precomputed by the generator). */
#ifndef TD_REDUCE_H
#define TD_REDUCE_H

#include <stdint.h>

#include "td_shape.h"

typedef struct {
    int32_t input_strides[TD_MAX_DIMS];
    int32_t kept_dims[TD_MAX_DIMS];    /* input dims with the reduced axes set to 1: walks the outputs */
    int32_t reduced_dims[TD_MAX_DIMS]; /* 1 on the kept axes: walks one output's inputs */
    int32_t count;                     /* inputs per output */
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier, shift;         /* input scale / (output scale * count) */
} td_mean_params;

void td_mean_s8(const td_mean_params *params, const int8_t *input, int8_t *output);

#endif /* TD_REDUCE_H */
