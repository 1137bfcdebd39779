/* Fixed-point transcendental functions of the TFLite int8 scheme (softmax, logistic, tanh).
 * A value "Qn" is an int32 raw with n integer bits and 31 - n fractional bits. The polynomial, the Newton
 * iterations and every rounding step follow the published gemmlowp fixed-point arithmetic, so results equal
 * TFLM's reference kernels bit for bit. Sums wrap like the reference's int32 adds (no undefined behaviour). */
#ifndef TD_FIXEDPOINT_H
#define TD_FIXEDPOINT_H

#include <stdint.h>

#include "td_quant.h"

#define TD_Q0_ONE INT32_MAX /* 1.0 is not representable with no integer bits: the largest value stands in */

static inline int32_t td_wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t td_wrap_sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* Product of two fixed-point values: Qa * Qb -> Q(a+b). */
static inline int32_t td_fp_mul(int32_t a, int32_t b) { return td_saturating_rounding_doubling_high_mul(a, b); }

/* x * 2^exponent, saturating when exponent > 0, rounding to nearest when exponent < 0. */
static inline int32_t td_fp_mul_by_pot(int32_t x, int32_t exponent)
{
    if (exponent > 0) {
        const int32_t threshold = (int32_t)(((uint32_t)1 << (31 - exponent)) - 1u);
        if (x > threshold) {
            return INT32_MAX;
        }
        if (x < -threshold) {
            return INT32_MIN;
        }
        return (int32_t)((uint32_t)x << exponent);
    }
    return exponent < 0 ? td_rounding_divide_by_pot(x, -exponent) : x;
}

/* A Q(src) raw value as Q(dst). */
static inline int32_t td_fp_rescale(int32_t x, int32_t src_integer_bits, int32_t dst_integer_bits)
{
    return td_fp_mul_by_pot(x, src_integer_bits - dst_integer_bits);
}

/* (a + b) / 2 rounded half away from zero, without overflow. */
static inline int32_t td_fp_rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* exp(a) for Q0 a in [-1/4, 0): Taylor series around -1/8. */
static inline int32_t td_fp_exp_on_interval_neg_quarter_to_0(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668; /* exp(-1/8) in Q0 */
    const int32_t one_third = 715827883;              /* 1/3 in Q0 */
    const int32_t x = td_wrap_add(a, 1 << 28);        /* x = a + 1/8 */
    const int32_t x2 = td_fp_mul(x, x);
    const int32_t x3 = td_fp_mul(x2, x);
    const int32_t x4 = td_fp_mul(x2, x2);
    const int32_t x4_over_4 = td_fp_mul_by_pot(x4, -2);
    const int32_t poly = td_fp_mul_by_pot(
        td_wrap_add(td_fp_mul(td_wrap_add(x4_over_4, x3), one_third), x2), -1); /* x4/24 + x3/6 + x2/2 */
    return td_wrap_add(exp_minus_one_eighth, td_fp_mul(exp_minus_one_eighth, td_wrap_add(x, poly)));
}

/* exp(a) as Q0 for a <= 0 given in Q(integer_bits), integer_bits in [0, 30]. */
static inline int32_t td_fp_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    /* exp(-2^k) for k = -2 .. 4, in Q0: multiplied in for each set bit of the remainder. */
    static const int32_t exp_of_minus_pot[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t a_mod_quarter_minus_quarter = td_wrap_sub(a & (one_quarter - 1), one_quarter);
    int32_t result =
        td_fp_exp_on_interval_neg_quarter_to_0(td_fp_rescale(a_mod_quarter_minus_quarter, integer_bits, 0));
    const int32_t remainder = td_wrap_sub(a_mod_quarter_minus_quarter, a);
    for (int32_t k = -2; k <= 4; ++k) {
        if (integer_bits > k && (remainder & ((int32_t)1 << (fractional_bits + k))) != 0) {
            result = td_fp_mul(result, exp_of_minus_pot[k + 2]);
        }
    }
    if (integer_bits > 5 && a < -((int32_t)1 << (36 - integer_bits))) { /* below -32: exp underflows */
        result = 0;
    }
    return a == 0 ? TD_Q0_ONE : result;
}

/* Three Newton-Raphson steps for 1 / d, d = (1 + x) / 2 in [1/2, 1) given as Q0, from the linear start
 * 48/17 - 32/17 d; the estimate is Q2. */
static inline int32_t td_fp_reciprocal_iterations(int32_t half_denominator)
{
    const int32_t q2_48_over_17 = 1515870810;
    const int32_t q2_neg_32_over_17 = -1010580540;
    const int32_t q2_one = 1 << 29;
    int32_t x = td_wrap_add(q2_48_over_17, td_fp_mul(half_denominator, q2_neg_32_over_17));
    for (int i = 0; i < 3; ++i) {
        const int32_t error = td_wrap_sub(q2_one, td_fp_mul(half_denominator, x));
        x = td_wrap_add(x, td_fp_rescale(td_fp_mul(x, error), 4, 2));
    }
    return x;
}

/* 1 / (1 + a) for Q0 a in [0, 1), as Q0. */
static inline int32_t td_fp_one_over_one_plus_x(int32_t a)
{
    const int32_t x = td_fp_reciprocal_iterations(td_fp_rounding_half_sum(a, TD_Q0_ONE));
    return td_fp_rescale(x, 1, 0); /* x / 2 read as Q1 */
}

/* (1 - a) / (1 + a) for Q0 a in [0, 1), as Q0. */
static inline int32_t td_fp_one_minus_x_over_one_plus_x(int32_t a)
{
    const int32_t x = td_fp_reciprocal_iterations(td_fp_rounding_half_sum(a, TD_Q0_ONE));
    return td_fp_rescale(td_wrap_sub(x, 1 << 29), 2, 0);
}

static inline int32_t td_count_leading_zeros(uint32_t x)
{
    int32_t count = 0;
    while (count < 32 && (x & 0x80000000u) == 0u) {
        x <<= 1;
        ++count;
    }
    return count;
}

/* 1 / x for a positive Q(integer_bits) x: a Q0 mantissa and the power of two it must still be divided by. */
static inline int32_t td_fp_reciprocal(int32_t x, int32_t integer_bits, int32_t *bits_over_unit)
{
    const int32_t headroom_plus_one = td_count_leading_zeros((uint32_t)x);
    *bits_over_unit = integer_bits - headroom_plus_one;
    const int32_t shifted_minus_one = (int32_t)(((uint32_t)x << headroom_plus_one) - 0x80000000u);
    return td_fp_one_over_one_plus_x(shifted_minus_one);
}

/* Negation that wraps like the reference's int32 negate instead of being undefined at INT32_MIN. */
static inline int32_t td_wrap_neg(int32_t a) { return (int32_t)(0u - (uint32_t)a); }

/* logistic(a) for Q4 a, as Q0. */
static inline int32_t td_fp_logistic_q4(int32_t a)
{
    if (a == 0) {
        return 1 << 30; /* 0.5 */
    }
    const int32_t magnitude = a > 0 ? a : td_wrap_neg(a);
    const int32_t positive = td_fp_one_over_one_plus_x(td_fp_exp_on_negative_values(td_wrap_neg(magnitude), 4));
    return a > 0 ? positive : td_wrap_sub(TD_Q0_ONE, positive);
}

/* tanh(a) for Q4 a, as Q0. */
static inline int32_t td_fp_tanh_q4(int32_t a)
{
    if (a == 0) {
        return 0;
    }
    const int32_t non_positive = a < 0 ? a : td_wrap_neg(a);
    /* exp(2n): the same raw read with one more integer bit */
    const int32_t t = td_fp_one_minus_x_over_one_plus_x(td_fp_exp_on_negative_values(non_positive, 5));
    return a < 0 ? td_wrap_neg(t) : t;
}

#endif /* TD_FIXEDPOINT_H */
