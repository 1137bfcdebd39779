/* BATCH_MATMUL: lhs [..., rows, depth] x rhs [..., depth, cols] -> [..., rows, cols] with NumPy broadcasting over
 * up to three batch dimensions; either operand may be stored transposed (adj_x / adj_y, folded into its strides).
 * int8 (32-bit accumulators) or int16 (zero points 0, 64-bit accumulators), per-tensor scales. */
#ifndef TD_BATCH_MATMUL_H
#define TD_BATCH_MATMUL_H

#include <stdint.h>

#define TD_MATMUL_BATCH_DIMS 3

typedef struct {
    int32_t batch_dims[TD_MATMUL_BATCH_DIMS];   /* the output's batch dimensions */
    int32_t lhs_batch_strides[TD_MATMUL_BATCH_DIMS]; /* element strides, 0 along a broadcast dimension */
    int32_t rhs_batch_strides[TD_MATMUL_BATCH_DIMS];
    int32_t rows, cols, depth;
    int32_t lhs_row_stride, lhs_depth_stride; /* element (row, k) of lhs: row * row_stride + k * depth_stride */
    int32_t rhs_depth_stride, rhs_col_stride; /* element (k, col) of rhs */
    int32_t lhs_offset, rhs_offset, output_offset; /* minus the input zero points; the output's zero point */
    int32_t output_multiplier, output_shift;
    int32_t activation_min, activation_max;
} td_batch_matmul_params;

void td_batch_matmul_s8(const td_batch_matmul_params *params, const int8_t *lhs, const int8_t *rhs, int8_t *output);
void td_batch_matmul_s16(const td_batch_matmul_params *params, const int16_t *lhs, const int16_t *rhs,
                         int16_t *output);

#endif /* TD_BATCH_MATMUL_H */
