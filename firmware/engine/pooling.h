/* AVERAGE_POOL_2D and MAX_POOL_2D on int8 or int16 NHWC tensors; input and output share scale and zero point. */
#ifndef TD_POOLING_H
#define TD_POOLING_H

#include <stdint.h>

#include "td_window.h"

typedef struct {
    td_window window; /* output_depth = input_depth; dilation 1 */
    int32_t activation_min;
    int32_t activation_max;
} td_pool_params;

/* Memory contract: output elements are written in increasing address order, each after the input reads it
 * needs, so the planner may place the output partly over the input it consumes (window_overlap_limit in
 * tinydeploy/engine/ops/common.py). A faster variant must keep that order or the planner must stop relying on it. */
void td_average_pool_2d_s8(const td_pool_params *params, const int8_t *input, int8_t *output);
void td_max_pool_2d_s8(const td_pool_params *params, const int8_t *input, int8_t *output);
void td_average_pool_2d_s16(const td_pool_params *params, const int16_t *input, int16_t *output);
void td_max_pool_2d_s16(const td_pool_params *params, const int16_t *input, int16_t *output);

#endif /* TD_POOLING_H */
