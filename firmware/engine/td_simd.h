/* The Cortex-M4 DSP operations the fast kernels use, with exact portable equivalents.
 *
 * On a core with the DSP extension (__ARM_FEATURE_DSP) each function is one instruction (ACLE intrinsics from
 * arm_acle.h, inline assembly where the ACLE has no form). Elsewhere (the host build that runs the conformance
 * tests) the same arithmetic is written in C, so the fast kernels are tested bit for bit off target too. */
#ifndef TD_SIMD_H
#define TD_SIMD_H

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define TD_HAVE_DSP 1
#else
#define TD_HAVE_DSP 0
#endif

/* Four int8 values from any address (the M4 allows unaligned word loads; memcpy compiles to one LDR). */
static inline uint32_t td_load_s8x4(const int8_t *p)
{
    uint32_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

/* Two int16 values (or one int32) from a 4-byte aligned address. */
static inline uint32_t td_load_u32(const void *p)
{
    uint32_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

static inline int32_t td_low_s16(uint32_t x) { return (int32_t)(int16_t)(uint16_t)(x & 0xFFFFu); }
static inline int32_t td_high_s16(uint32_t x) { return (int32_t)(int16_t)(uint16_t)(x >> 16); }
static inline uint32_t td_pack_s16(int32_t low, int32_t high)
{
    return ((uint32_t)(uint16_t)low) | ((uint32_t)(uint16_t)high << 16);
}

/* Bytes 0 and 2 of x, sign-extended to two int16 halves. */
static inline uint32_t td_sxtb16(uint32_t x)
{
#if TD_HAVE_DSP
    return (uint32_t)__sxtb16((int8x4_t)x);
#else
    return td_pack_s16((int8_t)(uint8_t)(x & 0xFFu), (int8_t)(uint8_t)((x >> 16) & 0xFFu));
#endif
}

/* Bytes 1 and 3 of x, sign-extended to two int16 halves (SXTB16 with ROR #8: still one instruction). */
static inline uint32_t td_sxtb16_ror8(uint32_t x)
{
#if TD_HAVE_DSP
    uint32_t result;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(result) : "r"(x));
    return result;
#else
    return td_pack_s16((int8_t)(uint8_t)((x >> 8) & 0xFFu), (int8_t)(uint8_t)(x >> 24));
#endif
}

/* Halfwise a + sign-extended bytes 0 and 2 of b (SXTAB16), e.g. adding an input offset while widening. */
static inline uint32_t td_sxtab16(uint32_t a, uint32_t b)
{
#if TD_HAVE_DSP
    return (uint32_t)__sxtab16((int16x2_t)a, (int8x4_t)b);
#else
    return td_pack_s16(td_low_s16(a) + (int8_t)(uint8_t)(b & 0xFFu),
                       td_high_s16(a) + (int8_t)(uint8_t)((b >> 16) & 0xFFu));
#endif
}

/* Halfwise a + sign-extended bytes 1 and 3 of b (SXTAB16 with ROR #8: one instruction). */
static inline uint32_t td_sxtab16_ror8(uint32_t a, uint32_t b)
{
#if TD_HAVE_DSP
    uint32_t result;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(result) : "r"(a), "r"(b));
    return result;
#else
    return td_pack_s16(td_low_s16(a) + (int8_t)(uint8_t)((b >> 8) & 0xFFu),
                       td_high_s16(a) + (int8_t)(uint8_t)(b >> 24));
#endif
}

/* (a * b + 2^31) >> 32 (SMMULR). */
static inline int32_t td_smmulr(int32_t a, int32_t b)
{
#if TD_HAVE_DSP
    int32_t result;
    __asm__("smmulr %0, %1, %2" : "=r"(result) : "r"(a), "r"(b));
    return result;
#else
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32);
#endif
}

/* c + ((a * b + 2^31) >> 32) (SMMLAR: the rounded high word of the product, plus c; wraps like int32). */
static inline int32_t td_smmlar(int32_t a, int32_t b, int32_t c)
{
#if TD_HAVE_DSP
    int32_t result;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(result) : "r"(a), "r"(b), "r"(c));
    return result;
#else
    return (int32_t)((uint32_t)c + (uint32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32));
#endif
}

/* x clamped to [-128, 127] (SSAT #8). */
static inline int32_t td_ssat8(int32_t x)
{
#if TD_HAVE_DSP
    return __ssat(x, 8);
#else
    return x < INT8_MIN ? INT8_MIN : (x > INT8_MAX ? INT8_MAX : x);
#endif
}

/* acc + low(a) * low(b) + high(a) * high(b), the halves signed 16-bit (SMLAD; wraps like int32 addition). */
static inline int32_t td_smlad(uint32_t a, uint32_t b, int32_t acc)
{
#if TD_HAVE_DSP
    return __smlad((int16x2_t)a, (int16x2_t)b, acc);
#else
    return (int32_t)((uint32_t)acc + (uint32_t)(td_low_s16(a) * td_low_s16(b)) +
                     (uint32_t)(td_high_s16(a) * td_high_s16(b)));
#endif
}

/* acc + low(a) * low(b) (SMLABB). */
static inline int32_t td_smlabb(uint32_t a, uint32_t b, int32_t acc)
{
#if TD_HAVE_DSP
    return __smlabb((int32_t)a, (int32_t)b, acc);
#else
    return (int32_t)((uint32_t)acc + (uint32_t)(td_low_s16(a) * td_low_s16(b)));
#endif
}

/* acc + high(a) * high(b) (SMLATT). */
static inline int32_t td_smlatt(uint32_t a, uint32_t b, int32_t acc)
{
#if TD_HAVE_DSP
    return __smlatt((int32_t)a, (int32_t)b, acc);
#else
    return (int32_t)((uint32_t)acc + (uint32_t)(td_high_s16(a) * td_high_s16(b)));
#endif
}

/* Low half of a, high half of b (PKHBT with no shift). */
static inline uint32_t td_pkhbt(uint32_t a, uint32_t b)
{
#if TD_HAVE_DSP
    uint32_t result;
    __asm__("pkhbt %0, %1, %2" : "=r"(result) : "r"(a), "r"(b));
    return result;
#else
    return (a & 0xFFFFu) | (b & 0xFFFF0000u);
#endif
}

/* High half of a, high half of b moved to the low half (PKHTB with ASR #16). */
static inline uint32_t td_pkhtb_asr16(uint32_t a, uint32_t b)
{
#if TD_HAVE_DSP
    uint32_t result;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(result) : "r"(a), "r"(b));
    return result;
#else
    return (a & 0xFFFF0000u) | (b >> 16);
#endif
}

#endif /* TD_SIMD_H */
