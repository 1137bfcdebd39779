/* AVERAGE_POOL_2D and MAX_POOL_2D on int16 NHWC tensors: the int8 kernels' arithmetic on 16-bit values. */
#ifndef TD_POOLING_S16_H
#define TD_POOLING_S16_H

#include <stdint.h>

#include "pooling.h"

/* Output elements are written in increasing address order, each after the input reads it needs. */
void td_average_pool_2d_s16(const td_pool_params *params, const int16_t *input, int16_t *output);
void td_max_pool_2d_s16(const td_pool_params *params, const int16_t *input, int16_t *output);

#endif /* TD_POOLING_S16_H */
