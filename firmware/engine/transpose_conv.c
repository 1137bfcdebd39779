/* Reference TRANSPOSE_CONV, bit-exact with TFLM's: input pixel (y, x) adds filter tap (fy, fx) to output pixel
 * (y * stride - pad + fy, x * stride - pad + fx). Computed per output value: the taps whose input row and column
 * are whole and inside the input. Integer sums do not depend on their order. */
#include "transpose_conv.h"

#include <stddef.h>

#include "td_int16.h"
#include "td_quant.h"

/* The input index that tap `tap` maps onto output index `out`, or -1 when none does. */
static int32_t source_index(int32_t out, int32_t tap, int32_t pad, int32_t stride, int32_t size)
{
    const int32_t scaled = out + pad - tap;
    if (scaled < 0 || scaled % stride != 0 || scaled / stride >= size) {
        return -1;
    }
    return scaled / stride;
}

void td_transpose_conv_s8(const td_transpose_conv_params *params, const int8_t *input, int8_t *output)
{
    const int32_t depth = params->input_depth;
    int8_t *out = output;
    for (int32_t batch = 0; batch < params->batches; ++batch) {
        const int8_t *image = input + (size_t)batch * (size_t)params->input_height * (size_t)params->input_width *
                                          (size_t)depth;
        for (int32_t out_y = 0; out_y < params->output_height; ++out_y) {
            for (int32_t out_x = 0; out_x < params->output_width; ++out_x) {
                for (int32_t channel = 0; channel < params->output_depth; ++channel) {
                    int32_t acc = 0;
                    for (int32_t fy = 0; fy < params->filter_height; ++fy) {
                        const int32_t in_y = source_index(out_y, fy, params->pad_top, params->stride_height,
                                                          params->input_height);
                        if (in_y < 0) {
                            continue;
                        }
                        for (int32_t fx = 0; fx < params->filter_width; ++fx) {
                            const int32_t in_x = source_index(out_x, fx, params->pad_left, params->stride_width,
                                                              params->input_width);
                            if (in_x < 0) {
                                continue;
                            }
                            const int8_t *pixel = image + ((size_t)in_y * (size_t)params->input_width +
                                                           (size_t)in_x) * (size_t)depth;
                            const int8_t *taps = params->filter +
                                                 (((size_t)channel * (size_t)params->filter_height + (size_t)fy) *
                                                      (size_t)params->filter_width + (size_t)fx) * (size_t)depth;
                            for (int32_t c = 0; c < depth; ++c) {
                                acc += ((int32_t)pixel[c] + params->input_offset) * (int32_t)taps[c];
                            }
                        }
                    }
                    if (params->bias != NULL) {
                        acc += params->bias[channel];
                    }
                    acc = td_multiply_by_quantized_multiplier(acc, params->multipliers[channel],
                                                              params->shifts[channel]) + params->output_offset;
                    *out++ = (int8_t)td_clamp_i32(acc, params->activation_min, params->activation_max);
                }
            }
        }
    }
}

void td_transpose_conv_s16(const td_transpose_conv_params *params, const int16_t *input, int16_t *output)
{
    const int32_t depth = params->input_depth;
    int16_t *out = output;
    for (int32_t batch = 0; batch < params->batches; ++batch) {
        const int16_t *image = input + (size_t)batch * (size_t)params->input_height * (size_t)params->input_width *
                                           (size_t)depth;
        for (int32_t out_y = 0; out_y < params->output_height; ++out_y) {
            for (int32_t out_x = 0; out_x < params->output_width; ++out_x) {
                for (int32_t channel = 0; channel < params->output_depth; ++channel) {
                    int64_t acc = 0;
                    for (int32_t fy = 0; fy < params->filter_height; ++fy) {
                        const int32_t in_y = source_index(out_y, fy, params->pad_top, params->stride_height,
                                                          params->input_height);
                        if (in_y < 0) {
                            continue;
                        }
                        for (int32_t fx = 0; fx < params->filter_width; ++fx) {
                            const int32_t in_x = source_index(out_x, fx, params->pad_left, params->stride_width,
                                                              params->input_width);
                            if (in_x < 0) {
                                continue;
                            }
                            const int16_t *pixel = image + ((size_t)in_y * (size_t)params->input_width +
                                                            (size_t)in_x) * (size_t)depth;
                            const int8_t *taps = params->filter +
                                                 (((size_t)channel * (size_t)params->filter_height + (size_t)fy) *
                                                      (size_t)params->filter_width + (size_t)fx) * (size_t)depth;
                            for (int32_t c = 0; c < depth; ++c) {
                                acc += (int32_t)pixel[c] * (int32_t)taps[c];
                            }
                        }
                    }
                    if (params->bias64 != NULL) {
                        acc += params->bias64[channel];
                    }
                    const int32_t scaled = td_multiply_by_quantized_multiplier_i64(acc, params->multipliers[channel],
                                                                                   params->shifts[channel]);
                    *out++ = (int16_t)td_clamp_i32(scaled, params->activation_min, params->activation_max);
                }
            }
        }
    }
}
