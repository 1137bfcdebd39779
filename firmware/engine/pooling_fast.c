/* Fast AVERAGE_POOL_2D (pooling_fast.h). */
#include "pooling_fast.h"

#include <stddef.h>

#include "td_quant.h"
#include "td_simd.h"

static inline int8_t average(int32_t sum, int32_t count, const td_pool_params *params)
{
    int32_t value = 0;
    if (count > 0) { /* round half away from zero, as the reference */
        value = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
    }
    return (int8_t)td_clamp_i32(value, params->activation_min, params->activation_max);
}

__attribute__((optimize("O2"))) void td_average_pool_2d_fast_s8(const td_pool_params *params, const int8_t *input,
                                                                int8_t *output)
{
    const td_window *w = &params->window;
    const size_t depth = (size_t)w->input_depth;
    const size_t row_bytes = (size_t)w->input_width * depth;
    const int32_t blocks = w->output_depth / 4;
    int8_t *out = output;
    for (int32_t b = 0; b < w->batches; ++b) {
        const int8_t *image = input + (size_t)b * (size_t)w->input_height * row_bytes;
        for (int32_t out_y = 0; out_y < w->output_height; ++out_y) {
            const int32_t y0 = out_y * w->stride_height - w->pad_top;
            const int32_t fy_start = td_max_i32(0, -y0);
            const int32_t fy_end = td_min_i32(w->filter_height, w->input_height - y0);
            for (int32_t out_x = 0; out_x < w->output_width; ++out_x, out += w->output_depth) {
                const int32_t x0 = out_x * w->stride_width - w->pad_left;
                const int32_t fx_start = td_max_i32(0, -x0);
                const int32_t fx_end = td_min_i32(w->filter_width, w->input_width - x0);
                const int32_t count = td_max_i32(fy_end - fy_start, 0) * td_max_i32(fx_end - fx_start, 0);
                const int8_t *corner = image + (size_t)(y0 + fy_start) * row_bytes + (size_t)(x0 + fx_start) * depth;
                for (int32_t block = 0; block < blocks; ++block) {
                    uint32_t even = 0, odd = 0; /* channels 0 and 2, 1 and 3 of the block, int16 lanes */
                    const int8_t *row = corner + (size_t)block * 4u;
                    for (int32_t fy = fy_start; fy < fy_end; ++fy, row += row_bytes) {
                        const int8_t *at = row;
                        for (int32_t fx = fx_start; fx < fx_end; ++fx, at += depth) {
                            const uint32_t word = td_load_s8x4(at);
                            even = td_sxtab16(even, word);
                            odd = td_sxtab16_ror8(odd, word);
                        }
                    }
                    out[4 * block] = average(td_low_s16(even), count, params);
                    out[4 * block + 1] = average(td_low_s16(odd), count, params);
                    out[4 * block + 2] = average(td_high_s16(even), count, params);
                    out[4 * block + 3] = average(td_high_s16(odd), count, params);
                }
                for (int32_t c = blocks * 4; c < w->output_depth; ++c) {
                    int32_t sum = 0;
                    const int8_t *row = corner + c;
                    for (int32_t fy = fy_start; fy < fy_end; ++fy, row += row_bytes) {
                        for (int32_t fx = 0; fx < fx_end - fx_start; ++fx) {
                            sum += row[(size_t)fx * depth];
                        }
                    }
                    out[c] = average(sum, count, params);
                }
            }
        }
    }
}
