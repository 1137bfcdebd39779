/* MAXIMUM and MINIMUM of two int8 or two int16 tensors with NumPy-style broadcasting: raw values compared
 * (TFLite does not rescale; the converter gives inputs and output one quantization). The output may share the
 * memory of an input of the output's shape. */
#ifndef TD_MAXIMUM_MINIMUM_H
#define TD_MAXIMUM_MINIMUM_H

#include <stdint.h>

#include "elementwise.h"

void td_maximum_s8(const td_broadcast *shape, const int8_t *input1, const int8_t *input2, int8_t *output);
void td_minimum_s8(const td_broadcast *shape, const int8_t *input1, const int8_t *input2, int8_t *output);
void td_maximum_s16(const td_broadcast *shape, const int16_t *input1, const int16_t *input2, int16_t *output);
void td_minimum_s16(const td_broadcast *shape, const int16_t *input1, const int16_t *input2, int16_t *output);

#endif /* TD_MAXIMUM_MINIMUM_H */
