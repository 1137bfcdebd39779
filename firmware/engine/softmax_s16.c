/* Reference SOFTMAX of int16 input to int16 output, through TFLite's exp and 1/(1+x) lookup tables. */
#include "softmax_s16.h"

#include <stddef.h>

#include "td_fixedpoint.h"

/* A table value interpolated between two of its 512 intervals; value in [-32768, 32767], 7 fractional bits of
 * position per interval. */
static int16_t table_lookup(int32_t value, const int16_t *table)
{
    const int32_t index = 256 + (value >> 7); /* arithmetic shift: gcc and every target */
    const int32_t offset = value & 0x7f;
    const int32_t base = table[index];
    const int32_t slope = table[index + 1] - table[index];
    return (int16_t)(base + ((slope * offset + 64) >> 7));
}

void td_softmax_s16(const td_softmax_s16_params *params, const int16_t *input, int16_t *output)
{
    const int32_t depth = params->depth;
    for (int32_t row = 0; row < params->rows; ++row) {
        const int16_t *in = input + (size_t)row * (size_t)depth;
        int16_t *out = output + (size_t)row * (size_t)depth;
        int32_t max_value = INT16_MIN;
        for (int32_t c = 0; c < depth; ++c) {
            max_value = td_max_i32(max_value, in[c]);
        }
        int32_t sum_of_exps = 0; /* Q16.15 */
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)in[c] - max_value;
            const int32_t scaled = td_multiply_by_quantized_multiplier(diff, params->input_multiplier,
                                                                       params->input_shift);
            /* [-65535, 0] recentred on [-32768, 32767] */
            const int32_t centred = td_clamp_i32(scaled + 32767, INT16_MIN, INT16_MAX);
            out[c] = table_lookup(centred, params->exp_table); /* the exps wait in the output */
            sum_of_exps += out[c];
        }
        const int32_t headroom_plus_one = td_count_leading_zeros((uint32_t)sum_of_exps);
        /* the sum normalised to [1, 2) in Q1.15 ... */
        const int32_t shifted_sum =
            (int32_t)((((int64_t)sum_of_exps << (headroom_plus_one - 1)) + (1 << 13)) >> 14);
        /* ... minus one, recentred on [-32768, 32767]: the 1 / (1 + x) table's input */
        const int32_t centred_sum = td_clamp_i32(shifted_sum - ((1 << 15) + (1 << 16)), INT16_MIN, INT16_MAX);
        const int32_t reciprocal = table_lookup(centred_sum, params->reciprocal_table);
        const int32_t right_shift = 31 - headroom_plus_one;
        const int64_t round = (int64_t)1 << (right_shift - 1);
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t result = (int32_t)(((int64_t)out[c] * (int64_t)reciprocal + round) >> right_shift);
            out[c] = (int16_t)td_clamp_i32(result, 0, INT16_MAX);
        }
    }
}
