/* AVERAGE_POOL_2D summing four channels per word (SXTAB16 into int16 lanes), bit-exact with
 * td_average_pool_2d_s8 (pooling.c), the oracle. The generator uses it when no window holds more than
 * TD_POOL_FAST_MAX_COUNT values, so no int16 lane can overflow (|sum| <= 128 * count). */
#ifndef TD_POOLING_FAST_H
#define TD_POOLING_FAST_H

#include <stdint.h>

#include "pooling.h"

#define TD_POOL_FAST_MAX_COUNT 255

/* Same memory contract as td_average_pool_2d_s8: pixel by pixel, channels in increasing order. */
void td_average_pool_2d_fast_s8(const td_pool_params *params, const int8_t *input, int8_t *output);

#endif /* TD_POOLING_FAST_H */
