/* CONV_2D for int16 activations and symmetric int8 weights (TFLite's int16x8 mode): zero points are 0, the
 * accumulator is 64-bit with an int64 bias (or 32-bit with an int32 bias, as the model's bias type says). */
#ifndef TD_CONV_2D_S16_H
#define TD_CONV_2D_S16_H

#include <stdint.h>

#include "conv_2d.h"

/* filter: [output_depth][filter_height][filter_width][input_depth]; bias: output_depth values or NULL. The
 * requant's offsets are unused (int16 tensors are symmetric). Writes its output in increasing address order, each
 * element after the reads it needs (the planner may overlap the output with the input it consumes). */
void td_conv_2d_s16(const td_conv_2d_params *params, const int16_t *input, const int8_t *filter,
                    const int64_t *bias, int16_t *output);
void td_conv_2d_s16_acc32(const td_conv_2d_params *params, const int16_t *input, const int8_t *filter,
                          const int32_t *bias, int16_t *output);

#endif /* TD_CONV_2D_S16_H */
