/* QUANTIZE and DEQUANTIZE at int16 edges: float32 -> int16, int16 -> float32, and the integer requantization
 * between int8, int16 and int32 tensors in any combination (TFLite's QUANTIZE between integer types). */
#ifndef TD_QUANTIZE_S16_H
#define TD_QUANTIZE_S16_H

#include <stdint.h>

#include "quantize.h"

typedef struct {
    td_requantize_params requantize;
    int32_t input_bytes;  /* 1 (int8), 2 (int16) or 4 (int32) */
    int32_t output_bytes;
} td_requantize_any_params;

/* The output may share the input's memory when it is no wider than the input (written no faster than read). */
void td_quantize_f32_s16(const td_affine_params *params, const float *input, int16_t *output);
void td_dequantize_s16_f32(const td_affine_params *params, const int16_t *input, float *output);
void td_requantize_any(const td_requantize_any_params *params, const void *input, void *output);

#endif /* TD_QUANTIZE_S16_H */
