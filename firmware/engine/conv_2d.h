/* CONV_2D for int8 activations and symmetric int8 weights (per-channel or per-tensor scales). */
#ifndef TD_CONV_2D_H
#define TD_CONV_2D_H

#include <stdint.h>

#include "td_window.h"

typedef struct {
    td_window window;
    td_requant requant;
} td_conv_2d_params;

/* filter: [output_depth][filter_height][filter_width][input_depth]; bias: output_depth values or NULL. */
/* Memory contract: output elements are written in increasing address order, each after the input reads it
 * needs, so the planner may place the output partly over the input it consumes (window_overlap_limit in
 * tinydeploy/engine/ops/common.py). A faster variant must keep that order or the planner must stop relying on it. */
void td_conv_2d_s8(const td_conv_2d_params *params, const int8_t *input, const int8_t *filter, const int32_t *bias,
                   int8_t *output);

#endif /* TD_CONV_2D_H */
