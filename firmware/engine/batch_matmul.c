/* Reference BATCH_MATMUL, bit-exact with TFLM's: the sum of (lhs + lhs_offset) * (rhs + rhs_offset) over the
 * depth, requantized with one multiplier (the 64-bit rounding for int16), plus the output zero point, clamped.
 * TFLM transposes operands into persistent buffers first; reading through strides gives the same sums. */
#include "batch_matmul.h"

#include <stddef.h>

#include "td_int16.h"
#include "td_quant.h"

void td_batch_matmul_s8(const td_batch_matmul_params *params, const int8_t *lhs, const int8_t *rhs, int8_t *output)
{
    int8_t *out = output;
    for (int32_t b0 = 0; b0 < params->batch_dims[0]; ++b0) {
        for (int32_t b1 = 0; b1 < params->batch_dims[1]; ++b1) {
            for (int32_t b2 = 0; b2 < params->batch_dims[2]; ++b2) {
                const int8_t *left = lhs + (size_t)b0 * (size_t)params->lhs_batch_strides[0] +
                                     (size_t)b1 * (size_t)params->lhs_batch_strides[1] +
                                     (size_t)b2 * (size_t)params->lhs_batch_strides[2];
                const int8_t *right = rhs + (size_t)b0 * (size_t)params->rhs_batch_strides[0] +
                                      (size_t)b1 * (size_t)params->rhs_batch_strides[1] +
                                      (size_t)b2 * (size_t)params->rhs_batch_strides[2];
                for (int32_t row = 0; row < params->rows; ++row) {
                    const int8_t *lhs_row = left + (size_t)row * (size_t)params->lhs_row_stride;
                    for (int32_t col = 0; col < params->cols; ++col) {
                        const int8_t *rhs_col = right + (size_t)col * (size_t)params->rhs_col_stride;
                        int32_t acc = 0;
                        for (int32_t k = 0; k < params->depth; ++k) {
                            acc += ((int32_t)lhs_row[(size_t)k * (size_t)params->lhs_depth_stride] +
                                    params->lhs_offset) *
                                   ((int32_t)rhs_col[(size_t)k * (size_t)params->rhs_depth_stride] +
                                    params->rhs_offset);
                        }
                        acc = td_multiply_by_quantized_multiplier(acc, params->output_multiplier,
                                                                  params->output_shift) +
                              params->output_offset;
                        *out++ = (int8_t)td_clamp_i32(acc, params->activation_min, params->activation_max);
                    }
                }
            }
        }
    }
}

void td_batch_matmul_s16(const td_batch_matmul_params *params, const int16_t *lhs, const int16_t *rhs,
                         int16_t *output)
{
    int16_t *out = output;
    for (int32_t b0 = 0; b0 < params->batch_dims[0]; ++b0) {
        for (int32_t b1 = 0; b1 < params->batch_dims[1]; ++b1) {
            for (int32_t b2 = 0; b2 < params->batch_dims[2]; ++b2) {
                const int16_t *left = lhs + (size_t)b0 * (size_t)params->lhs_batch_strides[0] +
                                      (size_t)b1 * (size_t)params->lhs_batch_strides[1] +
                                      (size_t)b2 * (size_t)params->lhs_batch_strides[2];
                const int16_t *right = rhs + (size_t)b0 * (size_t)params->rhs_batch_strides[0] +
                                       (size_t)b1 * (size_t)params->rhs_batch_strides[1] +
                                       (size_t)b2 * (size_t)params->rhs_batch_strides[2];
                for (int32_t row = 0; row < params->rows; ++row) {
                    const int16_t *lhs_row = left + (size_t)row * (size_t)params->lhs_row_stride;
                    for (int32_t col = 0; col < params->cols; ++col) {
                        const int16_t *rhs_col = right + (size_t)col * (size_t)params->rhs_col_stride;
                        int64_t acc = 0;
                        for (int32_t k = 0; k < params->depth; ++k) {
                            acc += (int64_t)((int32_t)lhs_row[(size_t)k * (size_t)params->lhs_depth_stride] +
                                             params->lhs_offset) *
                                   (int64_t)((int32_t)rhs_col[(size_t)k * (size_t)params->rhs_depth_stride] +
                                             params->rhs_offset);
                        }
                        const int32_t scaled = td_multiply_by_quantized_multiplier_i64(
                                                   acc, params->output_multiplier, params->output_shift) +
                                               params->output_offset;
                        *out++ = (int16_t)td_clamp_i32(scaled, params->activation_min, params->activation_max);
                    }
                }
            }
        }
    }
}
