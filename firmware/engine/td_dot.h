/* Dot products and requantization shared by the fast CONV_2D and FULLY_CONNECTED kernels (Cortex-M4 DSP).
 *
 * Weights stay int8 in flash. Inputs are widened once into "pairs": for each group of four inputs x0..x3 two
 * words, (x0 + offset, x2 + offset) and (x1 + offset, x3 + offset), as SXTAB16 splits a word; SXTB16 splits a
 * word of four int8 weights (w0, w2), (w1, w3) the same way, so one SMLAD multiplies matching pairs. Padding and
 * the inputs beyond the last whole group are widened as 0 (their weights are 0 too), so every sum equals the
 * reference kernels' bit for bit.
 *
 * Two layouts, picked per layer by the generator (tinydeploy/engine/ops/common.py):
 * - pixels4: four output pixels at once. Their pairs are interleaved per group (p0 even, p0 odd, p1 even, ...,
 *   p3 odd: 8 words), so each widened weight word serves four pixels. Weights per output channel contiguous
 *   (4 * groups bytes; none for a constant channel). Records per channel {bias, shifts, multiplier}.
 * - channels4: one pixel, output channels in blocks of four. Pairs in order (even, odd per group). Weights per
 *   block, per group the four channels' words; the last channels % 4 follow one by one (4 * groups bytes each).
 *   Records per block {four biases, then per channel shifts, multiplier, round}; per remaining channel
 *   {bias, shifts, multiplier, round}.
 *
 * Requantization. `shifts` holds up = left shift + 1 (bits 0-7), the right shift r (bits 8-15) and
 * TD_MAT_CONSTANT (a channel whose weights are all zero: its output is the constant in the bias word). With
 * `folded` the generator has proven for every channel of the layer that no shifted sum overflows, that r >= 1 and
 * that the clamp is [-128, 127]; the output is then
 *     a = acc << up;  out = ssat8(SMMLAR(a, multiplier, round + (a >> 31)) >> r),  round = (1 + 2 zp) 2^(r - 1),
 * which is the reference's doubling high multiply, rounding divide by 2^r (ties away from zero: the sign of the
 * product is the sign of a) and output offset exactly. Otherwise the reference arithmetic runs. */
#ifndef TD_DOT_H
#define TD_DOT_H

#include <stdint.h>
#include <string.h>

#include "td_quant.h"
#include "td_simd.h"

#if defined(__GNUC__) && !defined(__clang__)
#define TD_HOT __attribute__((optimize("O2")))
#define TD_NOINLINE __attribute__((noinline, unused))
#else
#define TD_HOT
#define TD_NOINLINE
#endif
#define TD_ARG __attribute__((unused)) /* read by the assembly (AAPCS: r0-r3, then the stack) */

#define TD_MAT_CONSTANT 0x10000u /* in a record's shifts: the channel's output is its bias word */
#define TD_MAT_RECORD_WORDS 3    /* pixels4 records: bias, shifts, multiplier */
#define TD_MAT_BLOCK_WORDS 16    /* channels4 records of a block of four channels */
#define TD_MAT_SINGLE_WORDS 4    /* channels4 records of a remaining channel: bias, shifts, multiplier, round */
#define TD_STACK_SCRATCH_MAX 2560 /* bytes of scratch a fast kernel may take on its own stack */

typedef struct {
    int32_t input_offset;  /* minus the input zero point, added while widening */
    int32_t output_offset; /* the output zero point */
    int32_t activation_min;
    int32_t activation_max;
    int32_t folded; /* 1: the shortened requantization above is proven exact for every channel */
} td_mat_quant;

/* The input offset in both int16 halves, for td_sxtab16. */
static inline uint32_t td_offset_pair(int32_t input_offset)
{
    return td_pack_s16(input_offset, input_offset);
}

/* `groups` words of four int8 inputs as pairs with the offset added, every `step` words of dst. */
static inline void td_widen(const int8_t *x, int32_t groups, uint32_t offset, uint32_t *dst, int32_t step)
{
    for (; groups > 0; --groups, x += 4, dst += step) {
        const uint32_t word = td_load_s8x4(x);
        dst[0] = td_sxtab16(offset, word);
        dst[1] = td_sxtab16_ror8(offset, word);
    }
}

#if TD_HAVE_DSP
/* td_widen with the step a constant: 5 instructions per group (two groups per loop test). */
#define TD_WIDEN_BODY(step)                                                                                      \
    __asm__ volatile(                                                                                            \
        "push {r4, r5}\n\t"                                                                                      \
        "cmp r1, #0\n\t"                                                                                        \
        "ble 3f\n\t"                                                                                            \
        "tst r1, #1\n\t"                                                                                        \
        "beq 2f\n\t"                                                                                            \
        "ldr r12, [r0], #4\n\t"                                                                                 \
        "sxtab16 r4, r2, r12\n\t"                                                                               \
        "sxtab16 r5, r2, r12, ror #8\n\t"                                                                       \
        "strd r4, r5, [r3], #" step "\n\t"                                                                      \
        "subs r1, r1, #1\n\t"                                                                                   \
        "beq 3f\n"                                                                                               \
        "2:\n\t"                                                                                                \
        "ldr r12, [r0], #4\n\t"                                                                                 \
        "sxtab16 r4, r2, r12\n\t"                                                                               \
        "sxtab16 r5, r2, r12, ror #8\n\t"                                                                       \
        "strd r4, r5, [r3], #" step "\n\t"                                                                      \
        "ldr r12, [r0], #4\n\t"                                                                                 \
        "sxtab16 r4, r2, r12\n\t"                                                                               \
        "sxtab16 r5, r2, r12, ror #8\n\t"                                                                       \
        "strd r4, r5, [r3], #" step "\n\t"                                                                      \
        "subs r1, r1, #2\n\t"                                                                                   \
        "bne 2b\n"                                                                                               \
        "3:\n\t"                                                                                                \
        "pop {r4, r5}\n\t"                                                                                      \
        "bx lr\n\t")

/* td_widen(x, groups, offset, dst, 8): the pixels4 layout. */
__attribute__((naked, noinline, unused)) static void td_widen_step8(TD_ARG const int8_t *x, TD_ARG int32_t groups,
                                                                    TD_ARG uint32_t offset, TD_ARG uint32_t *dst)
{
    TD_WIDEN_BODY("32");
}

/* td_widen(x, groups, offset, dst, 2): one pixel's pairs in order. */
__attribute__((naked, noinline, unused)) static void td_widen_step2(TD_ARG const int8_t *x, TD_ARG int32_t groups,
                                                                    TD_ARG uint32_t offset, TD_ARG uint32_t *dst)
{
    TD_WIDEN_BODY("8");
}
#undef TD_WIDEN_BODY
#else
static inline void td_widen_step8(const int8_t *x, int32_t groups, uint32_t offset, uint32_t *dst)
{
    td_widen(x, groups, offset, dst, 8);
}

static inline void td_widen_step2(const int8_t *x, int32_t groups, uint32_t offset, uint32_t *dst)
{
    td_widen(x, groups, offset, dst, 2);
}
#endif

/* `groups` groups of zero pairs (padding), every `step` words of dst. */
static inline void td_widen_zero(int32_t groups, uint32_t *dst, int32_t step)
{
    for (; groups > 0; --groups, dst += step) {
        dst[0] = 0;
        dst[1] = 0;
    }
}

/* The last `count` (1..3) inputs of a run as one group, the missing inputs as the zero point (widened to 0). */
static inline void td_widen_tail(const int8_t *x, int32_t count, uint32_t offset, uint32_t *dst)
{
    int8_t bytes[4];
    memset(bytes, (int8_t)(-td_low_s16(offset)), sizeof bytes);
    memcpy(bytes, x, (size_t)count);
    td_widen(bytes, 1, offset, dst, 2);
}

/* round for a right shift r >= 1 and the round base 1 + 2 zp. */
static inline int32_t td_mat_round(int32_t round_base, uint32_t shifts)
{
    return (int32_t)((uint32_t)round_base << ((shifts >> 8) & 0xFFu)) >> 1;
}

/* One output from its accumulator (bias included). */
static inline int8_t td_mat_output(const td_mat_quant *q, int32_t acc, uint32_t shifts, int32_t multiplier,
                                   int32_t round)
{
    const int32_t up = (int32_t)(shifts & 0xFFu), right = (int32_t)((shifts >> 8) & 0xFFu);
    if (q->folded) {
        const int32_t a = (int32_t)((uint32_t)acc << up);
        return (int8_t)td_ssat8(td_smmlar(a, multiplier, round + (a >> 31)) >> right);
    }
    const int32_t value = td_multiply_by_quantized_multiplier(acc, multiplier, up - 1 - right) + q->output_offset;
    return (int8_t)td_clamp_i32(value, q->activation_min, q->activation_max);
}

/* ------------------------------------------------------------------------------------------------ pixels4 */

/* What the pixels4 assembly reads (field offsets are fixed: see td_mat_pixels4_folded). */
typedef struct {
    int8_t *out;                  /* [0] pixel 0's output of the current channel (advanced per channel) */
    int32_t stride;               /* [4] bytes from one pixel's outputs to the next pixel's */
    int32_t round_base;           /* [8] 1 + 2 * output zero point */
    const int32_t *records_end;   /* [12] */
    const uint32_t *x;            /* [16] the four pixels' pairs, interleaved */
    int32_t weight_bytes;         /* [20] per channel: 4 * groups */
    const int8_t *weights;        /* [24] */
    const int32_t *records;       /* [28] */
} td_mat4_call;

/* Every channel for `pixels` (1..4) pixels, portable form (also the assembly's oracle on the host). */
static TD_NOINLINE TD_HOT void td_mat_pixels4_c(const td_mat4_call *call, int32_t pixels,
                                                 const td_mat_quant *q)
{
    const int8_t *w = call->weights;
    const int32_t groups = call->weight_bytes / 4;
    int8_t *out = call->out;
    for (const int32_t *r = call->records; r != call->records_end; r += TD_MAT_RECORD_WORDS, ++out) {
        const uint32_t shifts = (uint32_t)r[1];
        if (shifts & TD_MAT_CONSTANT) {
            for (int32_t p = 0; p < pixels; ++p) {
                out[(size_t)p * (size_t)call->stride] = (int8_t)r[0];
            }
            continue;
        }
        int32_t acc[4] = {r[0], r[0], r[0], r[0]};
        const uint32_t *x = call->x;
        if (pixels == 4) {
            for (int32_t g = 0; g < groups; ++g, w += 4, x += 8) {
                const uint32_t word = td_load_s8x4(w);
                const uint32_t even = td_sxtb16(word), odd = td_sxtb16_ror8(word);
                for (int32_t p = 0; p < 4; ++p) {
                    acc[p] = td_smlad(x[2 * p + 1], odd, td_smlad(x[2 * p], even, acc[p]));
                }
            }
        } else {
            for (int32_t g = 0; g < groups; ++g, w += 4, x += 8) {
                const uint32_t word = td_load_s8x4(w);
                const uint32_t even = td_sxtb16(word), odd = td_sxtb16_ror8(word);
                for (int32_t p = 0; p < pixels; ++p) {
                    acc[p] = td_smlad(x[2 * p + 1], odd, td_smlad(x[2 * p], even, acc[p]));
                }
            }
        }
        const int32_t round = td_mat_round(call->round_base, shifts);
        for (int32_t p = 0; p < pixels; ++p) {
            out[(size_t)p * (size_t)call->stride] = td_mat_output(q, acc[p], shifts, r[2], round);
        }
    }
}

#if TD_HAVE_DSP
/* One group against four pixels: 13 instructions for 16 MACs (x in r0, weights in r1, accumulators r8-r11). */
#define TD_P4_GROUP                                                                                              \
    "ldm r0!, {r4, r5, r6, r7}\n\t"                                                                              \
    "ldr lr, [r1], #4\n\t"                                                                                       \
    "sxtb16 r12, lr\n\t"                                                                                         \
    "sxtb16 lr, lr, ror #8\n\t"                                                                                  \
    "smlad r8, r4, r12, r8\n\t"                                                                                  \
    "smlad r8, r5, lr, r8\n\t"                                                                                   \
    "smlad r9, r6, r12, r9\n\t"                                                                                  \
    "smlad r9, r7, lr, r9\n\t"                                                                                   \
    "ldm r0!, {r4, r5, r6, r7}\n\t"                                                                              \
    "smlad r10, r4, r12, r10\n\t"                                                                                \
    "smlad r10, r5, lr, r10\n\t"                                                                                 \
    "smlad r11, r6, r12, r11\n\t"                                                                                \
    "smlad r11, r7, lr, r11\n\t"
/* One folded output of accumulator `acc` (shifts r6, multiplier r5, right shift r7, round r4) into lr. */
#define TD_P4_OUTPUT(acc)                                                                                        \
    "lsl " acc ", " acc ", r6\n\t"                                                                               \
    "add lr, r4, " acc ", asr #31\n\t"                                                                           \
    "smmlar lr, " acc ", r5, lr\n\t"                                                                             \
    "asr lr, lr, r7\n\t"                                                                                         \
    "ssat lr, #8, lr\n\t"
/* Every channel for four pixels with folded requantization. `extra` is (groups - 1) % 4 more TD_P4_GROUPs
 * (the loop runs four groups per test). The first group starts the
 * accumulators from the bias (r10, read before a2 overwrites it). Each channel's four outputs are written after
 * all the reads of the call (the caller widened the pixels first). */
#define TD_P4_BODY(extra)                                                                                        \
    __asm__ volatile(                                                                                            \
        "push {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t" /* [sp] = call */                                 \
        "ldr r1, [r0, #24]\n\t"                                                                                  \
        "ldr r3, [r0, #28]\n"                                                                                    \
        "1:\n\t"                                                                                                 \
        "ldr r12, [sp]\n\t"                                                                                      \
        "ldr r0, [r12, #16]\n\t"                                                                                 \
        "ldr r2, [r12, #20]\n\t"                                                                                 \
        "ldrd r10, r6, [r3], #12\n\t"                                                                            \
        "tst r6, #0x10000\n\t"                                                                                   \
        "bne 5f\n\t"                                                                                             \
        "add r2, r1, r2\n\t"                                                                                     \
        "ldm r0!, {r4, r5, r6, r7}\n\t"                                                                          \
        "ldr lr, [r1], #4\n\t"                                                                                   \
        "sxtb16 r12, lr\n\t"                                                                                     \
        "sxtb16 lr, lr, ror #8\n\t"                                                                              \
        "smlad r8, r4, r12, r10\n\t"                                                                             \
        "smlad r8, r5, lr, r8\n\t"                                                                               \
        "smlad r9, r6, r12, r10\n\t"                                                                             \
        "smlad r9, r7, lr, r9\n\t"                                                                               \
        "ldm r0!, {r4, r5, r6, r7}\n\t"                                                                          \
        "smlad r11, r6, r12, r10\n\t"                                                                            \
        "smlad r11, r7, lr, r11\n\t"                                                                             \
        "smlad r10, r4, r12, r10\n\t"                                                                            \
        "smlad r10, r5, lr, r10\n\t"                                                                             \
        extra                                                                                                    \
        "cmp r1, r2\n\t"                                                                                         \
        "beq 3f\n"                                                                                               \
        "2:\n\t"                                                                                                 \
        TD_P4_GROUP TD_P4_GROUP TD_P4_GROUP TD_P4_GROUP                                                          \
        "cmp r1, r2\n\t"                                                                                         \
        "bne 2b\n"                                                                                               \
        "3:\n\t"                                                                                                 \
        "ldrd r6, r5, [r3, #-8]\n\t"                                                                             \
        "lsr r7, r6, #8\n\t"                                                                                     \
        "ldr r12, [sp]\n\t"                                                                                      \
        "ldm r12, {r0, r2, r4}\n\t" /* out, stride, round base */                                                \
        "lsl r4, r4, r7\n\t"                                                                                     \
        "asr r4, r4, #1\n\t"                                                                                     \
        TD_P4_OUTPUT("r8")                                                                                       \
        "strb lr, [r0]\n\t"                                                                                      \
        TD_P4_OUTPUT("r9")                                                                                       \
        "strb lr, [r0, r2]\n\t"                                                                                  \
        TD_P4_OUTPUT("r10")                                                                                      \
        "strb lr, [r0, r2, lsl #1]\n\t"                                                                          \
        TD_P4_OUTPUT("r11")                                                                                      \
        "add r8, r0, r2, lsl #1\n\t"                                                                             \
        "strb lr, [r8, r2]\n"                                                                                    \
        "4:\n\t"                                                                                                 \
        "add r0, r0, #1\n\t"                                                                                     \
        "str r0, [r12]\n\t"                                                                                      \
        "ldr lr, [r12, #12]\n\t"                                                                                 \
        "cmp r3, lr\n\t"                                                                                         \
        "bne 1b\n\t"                                                                                             \
        "pop {r0, r4, r5, r6, r7, r8, r9, r10, r11, pc}\n"                                                       \
        "5:\n\t" /* a constant channel: its bias word is the output */                                          \
        "ldr r12, [sp]\n\t"                                                                                      \
        "ldm r12, {r0, r2}\n\t"                                                                                  \
        "strb r10, [r0]\n\t"                                                                                     \
        "strb r10, [r0, r2]\n\t"                                                                                 \
        "strb r10, [r0, r2, lsl #1]\n\t"                                                                         \
        "add r8, r0, r2, lsl #1\n\t"                                                                             \
        "strb r10, [r8, r2]\n\t"                                                                                 \
        "b 4b\n\t")

/* The groups after the first: a multiple of four, and one, two or three more. */
__attribute__((naked, noinline, unused)) static void td_mat_pixels4_folded_0(TD_ARG td_mat4_call *call)
{
    TD_P4_BODY("");
}

__attribute__((naked, noinline, unused)) static void td_mat_pixels4_folded_1(TD_ARG td_mat4_call *call)
{
    TD_P4_BODY(TD_P4_GROUP);
}

__attribute__((naked, noinline, unused)) static void td_mat_pixels4_folded_2(TD_ARG td_mat4_call *call)
{
    TD_P4_BODY(TD_P4_GROUP TD_P4_GROUP);
}

__attribute__((naked, noinline, unused)) static void td_mat_pixels4_folded_3(TD_ARG td_mat4_call *call)
{
    TD_P4_BODY(TD_P4_GROUP TD_P4_GROUP TD_P4_GROUP);
}
#undef TD_P4_BODY
#undef TD_P4_OUTPUT
#undef TD_P4_GROUP
#endif

/* Every channel for `pixels` (1..4) pixels whose pairs call->x holds; the records end after the last channel.
 * The assembly advances call->out. */
static inline void td_mat_pixels4(td_mat4_call *call, int32_t pixels, const td_mat_quant *q)
{
#if TD_HAVE_DSP
    if (pixels == 4 && q->folded && call->records != call->records_end) {
        switch ((call->weight_bytes / 4 - 1) & 3) { /* groups after the first beyond a multiple of four */
        case 0:
            td_mat_pixels4_folded_0(call);
            break;
        case 1:
            td_mat_pixels4_folded_1(call);
            break;
        case 2:
            td_mat_pixels4_folded_2(call);
            break;
        default:
            td_mat_pixels4_folded_3(call);
            break;
        }
        return;
    }
#endif
    td_mat_pixels4_c(call, pixels, q);
}

/* ----------------------------------------------------------------------------------------------- channels4 */

/* What the channels4 assembly reads (field offsets are fixed: see td_mat_channels4_folded). */
typedef struct {
    int8_t *out;                /* [0] the block's first output (advanced per block) */
    const int32_t *records;     /* [4] the block's records (advanced per block) */
    const int32_t *records_end; /* [8] end of the blocks' records */
    const uint32_t *x;          /* [12] pairs of the pixel */
    const uint32_t *x_end;      /* [16] x + 2 * groups */
    const int8_t *weights;      /* [20] */
} td_mat_c4_call;

/* Blocks of four channels, portable form. */
static TD_NOINLINE TD_HOT void td_mat_channels4_c(const td_mat_c4_call *call, const td_mat_quant *q)
{
    const int8_t *w = call->weights;
    int8_t *out = call->out;
    for (const int32_t *r = call->records; r != call->records_end; r += TD_MAT_BLOCK_WORDS, out += 4) {
        int32_t acc[4] = {r[0], r[1], r[2], r[3]};
        for (const uint32_t *x = call->x; x != call->x_end; x += 2) {
            for (int32_t c = 0; c < 4; ++c, w += 4) {
                const uint32_t word = td_load_s8x4(w);
                acc[c] = td_smlad(x[1], td_sxtb16_ror8(word), td_smlad(x[0], td_sxtb16(word), acc[c]));
            }
        }
        for (int32_t c = 0; c < 4; ++c) {
            const int32_t *record = r + 4 + 3 * c;
            out[c] = td_mat_output(q, acc[c], (uint32_t)record[0], record[1], record[2]);
        }
    }
}

#if TD_HAVE_DSP
/* One group against four channels: 18 instructions for 16 MACs (x in r0, weights in r1, r3 a temporary). */
#define TD_C4_GROUP                                                                                              \
    "ldm r0!, {r4, r5}\n\t"                                                                                      \
    "ldm r1!, {r6, r7, r12, lr}\n\t"                                                                             \
    "sxtb16 r3, r6\n\t"                                                                                          \
    "sxtb16 r6, r6, ror #8\n\t"                                                                                  \
    "smlad r8, r4, r3, r8\n\t"                                                                                   \
    "smlad r8, r5, r6, r8\n\t"                                                                                   \
    "sxtb16 r3, r7\n\t"                                                                                          \
    "sxtb16 r7, r7, ror #8\n\t"                                                                                  \
    "smlad r9, r4, r3, r9\n\t"                                                                                   \
    "smlad r9, r5, r7, r9\n\t"                                                                                   \
    "sxtb16 r3, r12\n\t"                                                                                         \
    "sxtb16 r12, r12, ror #8\n\t"                                                                                \
    "smlad r10, r4, r3, r10\n\t"                                                                                 \
    "smlad r10, r5, r12, r10\n\t"                                                                                \
    "sxtb16 r3, lr\n\t"                                                                                          \
    "sxtb16 lr, lr, ror #8\n\t"                                                                                  \
    "smlad r11, r4, r3, r11\n\t"                                                                                 \
    "smlad r11, r5, lr, r11\n\t"
/* One folded output of `acc` from the record at r3 (shifts, multiplier, round), written at r0++. */
#define TD_C4_OUTPUT(acc)                                                                                        \
    "ldm r3!, {r4, r5, r6}\n\t"                                                                                  \
    "lsl " acc ", " acc ", r4\n\t"                                                                               \
    "add r6, r6, " acc ", asr #31\n\t"                                                                           \
    "smmlar r6, " acc ", r5, r6\n\t"                                                                             \
    "lsr r4, r4, #8\n\t"                                                                                         \
    "asr r6, r6, r4\n\t"                                                                                         \
    "ssat r6, #8, r6\n\t"                                                                                        \
    "strb r6, [r0], #1\n\t"
/* Every block, folded requantization; `extra` as in TD_P4_BODY (groups odd in number: one before the loop). */
#define TD_C4_BODY(extra)                                                                                        \
    __asm__ volatile(                                                                                            \
        "push {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t" /* [sp] = call */                                 \
        "ldr r1, [r0, #20]\n\t"                                                                                  \
        "ldr r2, [r0, #16]\n"                                                                                    \
        "1:\n\t"                                                                                                 \
        "ldr r12, [sp]\n\t"                                                                                      \
        "ldr r3, [r12, #4]\n\t"                                                                                  \
        "ldm r3!, {r8, r9, r10, r11}\n\t" /* the biases */                                                       \
        "str r3, [r12, #4]\n\t"                                                                                  \
        "ldr r0, [r12, #12]\n\t"                                                                                 \
        extra                                                                                                    \
        "cmp r0, r2\n\t"                                                                                         \
        "beq 3f\n"                                                                                               \
        "2:\n\t"                                                                                                 \
        TD_C4_GROUP TD_C4_GROUP                                                                                  \
        "cmp r0, r2\n\t"                                                                                         \
        "bne 2b\n"                                                                                               \
        "3:\n\t"                                                                                                 \
        "ldr r12, [sp]\n\t"                                                                                      \
        "ldm r12, {r0, r3}\n\t" /* out, records */                                                               \
        TD_C4_OUTPUT("r8") TD_C4_OUTPUT("r9") TD_C4_OUTPUT("r10") TD_C4_OUTPUT("r11")                            \
        "stm r12, {r0, r3}\n\t"                                                                                  \
        "ldr lr, [r12, #8]\n\t"                                                                                  \
        "cmp r3, lr\n\t"                                                                                         \
        "bne 1b\n\t"                                                                                             \
        "pop {r0, r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t")

__attribute__((naked, noinline, unused)) static void td_mat_channels4_folded_even(TD_ARG td_mat_c4_call *call)
{
    TD_C4_BODY("");
}

__attribute__((naked, noinline, unused)) static void td_mat_channels4_folded_odd(TD_ARG td_mat_c4_call *call)
{
    TD_C4_BODY(TD_C4_GROUP);
}
#undef TD_C4_BODY
#undef TD_C4_OUTPUT
#undef TD_C4_GROUP
#endif

/* Every block of four channels (the call's records hold at least one block). The assembly advances call->out
 * and call->records. */
static inline void td_mat_channels4(td_mat_c4_call *call, const td_mat_quant *q)
{
#if TD_HAVE_DSP
    if (q->folded) {
        if (((call->x_end - call->x) & 2) != 0) {
            td_mat_channels4_folded_odd(call);
        } else {
            td_mat_channels4_folded_even(call);
        }
        return;
    }
#endif
    td_mat_channels4_c(call, q);
}

/* One remaining channel (channels4 layout): weights contiguous, record {bias, shifts, multiplier, round}. */
static inline int8_t td_mat_single(const uint32_t *x, int32_t groups, const int8_t *w, const int32_t *record,
                                   const td_mat_quant *q)
{
    int32_t acc = record[0];
    for (int32_t g = 0; g < groups; ++g, w += 4, x += 2) {
        const uint32_t word = td_load_s8x4(w);
        acc = td_smlad(x[1], td_sxtb16_ror8(word), td_smlad(x[0], td_sxtb16(word), acc));
    }
    return td_mat_output(q, acc, (uint32_t)record[1], record[2], record[3]);
}

/* One pixel's every channel, channels4 layout: blocks, then the remaining channels. */
static inline void td_mat_pixel(const uint32_t *x, int32_t groups, const int8_t *weights, const int32_t *records,
                                int32_t channels, const td_mat_quant *q, int8_t *out)
{
    const int32_t blocks = channels >> 2;
    if (blocks > 0) {
        td_mat_c4_call call = {out, records, records + (size_t)blocks * TD_MAT_BLOCK_WORDS, x,
                               x + (size_t)groups * 2u, weights};
        td_mat_channels4(&call, q);
    }
    const int8_t *w = weights + (size_t)blocks * 16u * (size_t)groups;
    const int32_t *record = records + (size_t)blocks * TD_MAT_BLOCK_WORDS;
    for (int32_t c = blocks * 4; c < channels; ++c, w += 4 * groups, record += TD_MAT_SINGLE_WORDS) {
        out[c] = td_mat_single(x, groups, w, record, q);
    }
}

#endif /* TD_DOT_H */
