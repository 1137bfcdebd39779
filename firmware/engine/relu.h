/* RELU and RELU6 as ops on int8 or int16: RELU rescales to the output's quantization and clamps at its zero;
 * RELU6 clamps the raw values to the input's quantized 0 and 6 (TFLite keeps the input's quantization there). */
#ifndef TD_RELU_H
#define TD_RELU_H

#include <stdint.h>

typedef struct {
    int32_t count;
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier, shift; /* input scale / output scale (identity for RELU6) */
    int32_t activation_min, activation_max;
} td_relu_params;

/* The output may share the input's memory. */
void td_relu_s8(const td_relu_params *params, const int8_t *input, int8_t *output);
void td_relu_s16(const td_relu_params *params, const int16_t *input, int16_t *output);

#endif /* TD_RELU_H */
