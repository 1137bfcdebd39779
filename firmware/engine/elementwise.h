/* Elementwise ADD and MUL of two int8 or two int16 tensors with NumPy-style broadcasting. int16 tensors have zero
 * points 0 and ADD's headroom shift is 15 instead of 20. The output may share the memory of an input of the output's
 * shape (each element is read before it is written). */
#ifndef TD_ELEMENTWISE_H
#define TD_ELEMENTWISE_H

#include <stdint.h>

#include "td_shape.h"

typedef struct {
    td_broadcast shape;
    int32_t input1_offset, input2_offset; /* minus the zero points */
    int32_t left_shift;                   /* headroom given to both inputs before rescaling */
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t output_offset;
    int32_t activation_min, activation_max;
} td_add_params;

typedef struct {
    td_broadcast shape;
    int32_t input1_offset, input2_offset;
    int32_t output_multiplier, output_shift;
    int32_t output_offset;
    int32_t activation_min, activation_max;
} td_mul_params;

void td_add_s8(const td_add_params *params, const int8_t *input1, const int8_t *input2, int8_t *output);
void td_mul_s8(const td_mul_params *params, const int8_t *input1, const int8_t *input2, int8_t *output);
void td_add_s16(const td_add_params *params, const int16_t *input1, const int16_t *input2, int16_t *output);
void td_mul_s16(const td_mul_params *params, const int16_t *input1, const int16_t *input2, int16_t *output);

#endif /* TD_ELEMENTWISE_H */
