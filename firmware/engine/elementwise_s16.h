/* Elementwise ADD and MUL of two int16 tensors (zero points 0) with NumPy-style broadcasting: the int8 kernels'
 * arithmetic on 16-bit values (ADD's headroom shift is 15 instead of 20). The output may share the memory of an
 * input of the output's shape (each element is read before it is written). */
#ifndef TD_ELEMENTWISE_S16_H
#define TD_ELEMENTWISE_S16_H

#include <stdint.h>

#include "elementwise.h"

void td_add_s16(const td_add_params *params, const int16_t *input1, const int16_t *input2, int16_t *output);
void td_mul_s16(const td_mul_params *params, const int16_t *input1, const int16_t *input2, int16_t *output);

#endif /* TD_ELEMENTWISE_S16_H */
