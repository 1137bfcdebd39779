/* Reductions over any set of axes: MEAN of int8 or int16 (an integer sum, one fixed-point rescale that folds in
 * the division by the element count, precomputed by the generator) and REDUCE_MAX of int8 (the largest value;
 * TFLM requires the output quantized like the input, so no rescale). */
#ifndef TD_REDUCE_H
#define TD_REDUCE_H

#include <stdint.h>

#include "td_shape.h"

typedef struct {
    int32_t input_strides[TD_MAX_DIMS];
    int32_t kept_dims[TD_MAX_DIMS];    /* input dims with the reduced axes set to 1: walks the outputs */
    int32_t reduced_dims[TD_MAX_DIMS]; /* 1 on the kept axes: walks one output's inputs */
} td_reduce_shape;

typedef struct {
    td_reduce_shape shape;
    int32_t count; /* inputs per output; the generator proves count * (|input| + |zero point|) fits int32 */
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier, shift; /* input scale / (output scale * count) */
} td_mean_params;

void td_mean_s8(const td_mean_params *params, const int8_t *input, int8_t *output);
void td_mean_s16(const td_mean_params *params, const int16_t *input, int16_t *output);
void td_reduce_max_s8(const td_reduce_shape *shape, const int8_t *input, int8_t *output);

#endif /* TD_REDUCE_H */
