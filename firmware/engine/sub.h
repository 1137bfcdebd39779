/* SUB of two int8 or two int16 tensors with NumPy-style broadcasting: ADD's arithmetic (both inputs rescaled to a
 * common scale with headroom) with the difference instead of the sum. The output may share the memory of an input
 * of the output's shape. */
#ifndef TD_SUB_H
#define TD_SUB_H

#include <stdint.h>

#include "elementwise.h"

void td_sub_s8(const td_add_params *params, const int8_t *input1, const int8_t *input2, int8_t *output);
void td_sub_s16(const td_add_params *params, const int16_t *input1, const int16_t *input2, int16_t *output);

#endif /* TD_SUB_H */
