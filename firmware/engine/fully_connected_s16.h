/* FULLY_CONNECTED for int16 activations and symmetric int8 weights (TFLite's int16x8 mode): zero points are 0, the
 * accumulator is 64-bit with an int64 bias (or 32-bit with an int32 bias, as the model's bias type says). */
#ifndef TD_FULLY_CONNECTED_S16_H
#define TD_FULLY_CONNECTED_S16_H

#include <stdint.h>

#include "fully_connected.h"

/* filter: [output_depth][input_depth]; bias: output_depth values or NULL; output: [batches][output_depth]. The
 * params' offsets are unused. */
void td_fully_connected_s16(const td_fully_connected_params *params, const int16_t *input, const int8_t *filter,
                            const int64_t *bias, int16_t *output);
void td_fully_connected_s16_acc32(const td_fully_connected_params *params, const int16_t *input,
                                  const int8_t *filter, const int32_t *bias, int16_t *output);

#endif /* TD_FULLY_CONNECTED_S16_H */
