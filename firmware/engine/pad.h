/* PAD / PADV2 of an int8 or int16 tensor with a constant (the output zero point unless given). */
#ifndef TD_PAD_H
#define TD_PAD_H

#include <stdint.h>

#include "td_shape.h"

typedef struct {
    int32_t output_dims[TD_MAX_DIMS];
    int32_t input_dims[TD_MAX_DIMS];
    int32_t before[TD_MAX_DIMS]; /* padding before the input along each dimension */
    int32_t value;               /* the quantized padding value */
} td_pad_params;

void td_pad_s8(const td_pad_params *params, const int8_t *input, int8_t *output);
void td_pad_s16(const td_pad_params *params, const int16_t *input, int16_t *output);

#endif /* TD_PAD_H */
