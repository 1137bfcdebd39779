/* TRANSPOSE_CONV (a convolution's gradient with respect to its input: every input pixel scatters the filter into
 * the output, stride apart), NHWC, per-channel int8 weights [out][height][width][in]: int8 activations with int32
 * bias, or int16 activations (zero points 0) with int64 bias. Each output value gathers its contributions in one
 * accumulator, so no scratch buffer is needed (TFLM scatters into one as large as the output). */
#ifndef TD_TRANSPOSE_CONV_H
#define TD_TRANSPOSE_CONV_H

#include <stdint.h>

typedef struct {
    int32_t batches, input_height, input_width, input_depth;
    int32_t output_height, output_width, output_depth;
    int32_t filter_height, filter_width, stride_height, stride_width;
    int32_t pad_top, pad_left;
    int32_t input_offset, output_offset; /* minus the input's zero point; the output's zero point */
    int32_t activation_min, activation_max;
    const int32_t *multipliers, *shifts; /* per output channel */
    const int8_t *filter;
    const int32_t *bias;   /* int8 activations, or NULL */
    const int64_t *bias64; /* int16 activations, or NULL */
} td_transpose_conv_params;

void td_transpose_conv_s8(const td_transpose_conv_params *params, const int8_t *input, int8_t *output);
void td_transpose_conv_s16(const td_transpose_conv_params *params, const int16_t *input, int16_t *output);

#endif /* TD_TRANSPOSE_CONV_H */
