/* Helpers of the int16x8 scheme (16-bit activations, 8-bit weights) shared by kernels: requantizing a 64-bit
 * accumulator, and the table-based int16 logistic and tanh of TFLM's reference kernels (used by the LSTM gates).
 * Every step equals TFLM's arithmetic bit for bit. */
#ifndef TD_INT16_H
#define TD_INT16_H

#include <stdint.h>

#include "td_quant.h"

static inline int16_t td_saturate_i16(int32_t value)
{
    return (int16_t)td_clamp_i32(value, INT16_MIN, INT16_MAX);
}

/* x * M for a 64-bit x (|x| < 2^47), M = multiplier * 2^(shift - 31), shift in [-31, 7]: TFLM rounds the Q31
 * multiplier to Q15 first, then shifts once with rounding; the result is truncated to 32 bits. */
static inline int32_t td_multiply_by_quantized_multiplier_i64(int64_t x, int32_t multiplier, int32_t shift)
{
    const int64_t reduced = multiplier < 0x7FFF0000 ? ((int64_t)multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int32_t total_shift = 15 - shift;
    const int64_t rounded = x * reduced + ((int64_t)1 << (total_shift - 1));
    /* Arithmetic shift of a negative value: implementation-defined in C, arithmetic on gcc and every target. */
    return (int32_t)(uint32_t)(uint64_t)(rounded >> total_shift);
}

/* The int16 output of one output channel's 64-bit accumulator (int64 bias, if any, added wrapping), rescaled by the
 * channel's (or the single) multiplier and shift and clamped: the epilogue of the int16x8 reference kernels. */
static inline int16_t td_accumulator_to_s16(int64_t acc, const int64_t *bias, int32_t channel, int32_t per_channel,
                                            const int32_t *multipliers, const int32_t *shifts, int32_t activation_min,
                                            int32_t activation_max)
{
    if (bias != 0) {
        acc = (int64_t)((uint64_t)acc + (uint64_t)bias[channel]);
    }
    const int32_t c = per_channel ? channel : 0;
    const int32_t value = td_multiply_by_quantized_multiplier_i64(acc, multipliers[c], shifts[c]);
    return (int16_t)td_clamp_i32(value, activation_min, activation_max);
}

/* The same with an int32 bias: the reference then sums in 32 bits (wrapping) and rescales a 32-bit value. */
static inline int16_t td_accumulator32_to_s16(int64_t acc, const int32_t *bias, int32_t channel, int32_t per_channel,
                                              const int32_t *multipliers, const int32_t *shifts,
                                              int32_t activation_min, int32_t activation_max)
{
    uint32_t sum = (uint32_t)(int32_t)acc;
    if (bias != 0) {
        sum += (uint32_t)bias[channel];
    }
    const int32_t c = per_channel ? channel : 0;
    const int32_t value = td_multiply_by_quantized_multiplier((int32_t)sum, multipliers[c], shifts[c]);
    return (int16_t)td_clamp_i32(value, activation_min, activation_max);
}

/* sigmoid(i / 24) for i = 0..255 in 0.16 fixed point, as tabulated by TFLM (values tuned for linear interpolation,
 * not the rounded function: they are listed, not computed). tanh(x) = 2 sigmoid(2x) - 1 reads the same table. */
static const uint16_t td_sigmoid_table_u16[256] = {
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149,
    40794, 41432, 42064, 42688, 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409, 51865, 52311, 52745, 53169,
    53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370,
    60565, 60753, 60935, 61110, 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186, 63279, 63368, 63454, 63536,
    63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786,
    64816, 64845, 64873, 64900, 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208, 65221, 65234, 65246, 65258,
    65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433,
    65438, 65442, 65445, 65449, 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491, 65493, 65495, 65497, 65498,
    65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522,
    65523, 65523, 65524, 65524, 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530, 65530, 65530, 65531, 65531,
    65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534,
    65534, 65534, 65534, 65535,
};

/* The int16 input scaled as TFLM does before the table lookup: (x * multiplier + round) >> shift. */
static inline int32_t td_lut_input(int16_t x, int32_t multiplier, int32_t shift)
{
    const int32_t round = shift > 0 ? (int32_t)1 << (shift - 1) : 0;
    return ((int32_t)x * multiplier + round) >> shift;
}

/* Logistic of a scaled input (Q3.12 times 3 for the LSTM gates) as Q0.15, by interpolating the table. */
static inline int16_t td_lut_sigmoid(int32_t scaled)
{
    const uint32_t magnitude = (uint32_t)(scaled < 0 ? -scaled : scaled);
    const uint32_t index = magnitude >> 9;
    uint32_t result;
    if (index >= 255u) {
        result = 0x7FFFu << 10;
    } else {
        const uint32_t low = td_sigmoid_table_u16[index];
        const uint32_t high = td_sigmoid_table_u16[index + 1u];
        result = (low << 9) + (magnitude & 0x1FFu) * (high - low);
    }
    result = scaled >= 0 ? result + (1u << 9) : (1u << 25) - result + (1u << 9) - 1u;
    return (int16_t)(result >> 10);
}

/* tanh of a scaled input as Q0.15, from the same table. */
static inline int16_t td_lut_tanh(int32_t scaled)
{
    const uint32_t magnitude = (uint32_t)(scaled < 0 ? -scaled : scaled);
    const uint32_t index = magnitude >> 8;
    int32_t result;
    if (index >= 255u) {
        result = (int32_t)(0xFFFFu << 8);
    } else {
        const uint32_t low = td_sigmoid_table_u16[index];
        const uint32_t high = td_sigmoid_table_u16[index + 1u];
        result = (int32_t)((low << 8) + (magnitude & 0xFFu) * (high - low));
    }
    result = scaled >= 0 ? result - (1 << 23) + (1 << 7) : -result + (1 << 23) + (1 << 7) - 1;
    return (int16_t)(result >> 8);
}

#endif /* TD_INT16_H */
