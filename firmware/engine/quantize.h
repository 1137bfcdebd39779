/* QUANTIZE (float32 -> int8, int8 -> int8) and DEQUANTIZE (int8 -> float32) at a model's edges.
 * Float tensors live in the activation buffer as native 32-bit floats (4-byte aligned). */
#ifndef TD_QUANTIZE_H
#define TD_QUANTIZE_H

#include <stdint.h>

typedef struct {
    int32_t count;
    int32_t zero_point;
    float scale;
} td_affine_params;

typedef struct {
    int32_t count;
    int32_t input_zero_point;
    int32_t output_zero_point;
    int32_t multiplier, shift; /* input scale / output scale */
} td_requantize_params;

/* The output may share the input's memory (it is written no faster than the input is read). */
void td_quantize_f32_s8(const td_affine_params *params, const float *input, int8_t *output);
void td_requantize_s8(const td_requantize_params *params, const int8_t *input, int8_t *output);
void td_dequantize_s8_f32(const td_affine_params *params, const int8_t *input, float *output);

#endif /* TD_QUANTIZE_H */
