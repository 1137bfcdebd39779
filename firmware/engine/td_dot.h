/* Dot products and requantization shared by the fast CONV_2D and FULLY_CONNECTED kernels (Cortex-M4 DSP).
 *
 * Weights are widened by the generator into int16 pairs in the order SXTB16 splits four int8 inputs: for each
 * group of four inputs x0..x3 a channel has two words, (w0, w2) and (w1, w3). Output channels come in blocks of
 * four (words of one group: c0 even, c0 odd, c1 even, ... c3 odd), the last out_depth % 4 channels in blocks of
 * one. The input offset is added while widening (SXTAB16), so padding taps are simply skipped, as in the
 * reference kernels, and every sum equals the reference's bit for bit. */
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

/* The input offset in both int16 halves, for td_sxtab16. */
static inline uint32_t td_offset_pair(int32_t input_offset)
{
    return td_pack_s16(input_offset, input_offset);
}

/* The last `count` (1..3) inputs of a row as one word, the missing bytes filled with the zero point (which the
 * offset turns into 0, and whose weights are 0 anyway): no read past the row. */
static inline uint32_t td_load_tail(const int8_t *x, int32_t count, int32_t input_offset)
{
    int8_t bytes[4];
    memset(bytes, (int8_t)(-input_offset), sizeof bytes);
    memcpy(bytes, x, (size_t)count);
    return td_load_s8x4(bytes);
}

/* The eight SMLADs of one group of four inputs against a block of four channels (portable form). */
#define TD_DOT_GROUP4(in, w)                                                                                     \
    do {                                                                                                         \
        const uint32_t even_ = td_sxtab16(offset, (in)), odd_ = td_sxtab16_ror8(offset, (in));                  \
        a0 = td_smlad(even_, (w)[0], a0); a0 = td_smlad(odd_, (w)[1], a0);                                       \
        a1 = td_smlad(even_, (w)[2], a1); a1 = td_smlad(odd_, (w)[3], a1);                                       \
        a2 = td_smlad(even_, (w)[4], a2); a2 = td_smlad(odd_, (w)[5], a2);                                       \
        a3 = td_smlad(even_, (w)[6], a3); a3 = td_smlad(odd_, (w)[7], a3);                                       \
        (w) += 8;                                                                                                \
    } while (0)

#if TD_HAVE_DSP
/* The whole groups of td_dot_block4 (x != end), scheduled by hand: one LDR, two SXTAB16, two LDMs of four weight
 * words and eight SMLADs per group of four inputs, 15 instructions per 16 MACs, every value in a register (the
 * compiler runs out of registers here and spills). The same arithmetic as the portable loop in td_dot_block4. */
#define TD_ARG __attribute__((unused)) /* read by the assembly (AAPCS: r0-r3, then the stack) */
__attribute__((naked, noinline, unused)) static void td_dot_block4_groups(TD_ARG const int8_t *x,
                                                                         TD_ARG const int8_t *end,
                                                                         TD_ARG uint32_t offset,
                                                                         TD_ARG const uint32_t *w,
                                                                         TD_ARG int32_t acc[4])
{
    __asm__ volatile(
        "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "ldr r12, [sp, #36]\n\t" /* acc */
        "ldm r12, {r8, r9, r10, r11}\n"
        "1:\n\t"
        "ldr r12, [r0], #4\n\t"
        "sxtab16 lr, r2, r12\n\t"
        "sxtab16 r12, r2, r12, ror #8\n\t"
        "ldmia r3!, {r4, r5, r6, r7}\n\t"
        "smlad r8, lr, r4, r8\n\t"
        "smlad r8, r12, r5, r8\n\t"
        "smlad r9, lr, r6, r9\n\t"
        "smlad r9, r12, r7, r9\n\t"
        "ldmia r3!, {r4, r5, r6, r7}\n\t"
        "smlad r10, lr, r4, r10\n\t"
        "smlad r10, r12, r5, r10\n\t"
        "smlad r11, lr, r6, r11\n\t"
        "smlad r11, r12, r7, r11\n\t"
        "cmp r0, r1\n\t"
        "bne 1b\n\t"
        "ldr r12, [sp, #36]\n\t"
        "stm r12, {r8, r9, r10, r11}\n\t"
        "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}
#endif

/* acc[0..3] += sum over `length` inputs of (x[i] + offset) * w_c[i] for one block of four channels. */
static TD_NOINLINE TD_HOT void td_dot_block4(const int8_t *x, int32_t length, int32_t input_offset,
                                             const uint32_t *w, int32_t acc[4])
{
    const uint32_t offset = td_offset_pair(input_offset);
    const int8_t *end = x + (length & ~3);
    if (x != end) {
#if TD_HAVE_DSP
        td_dot_block4_groups(x, end, offset, w, acc);
        w += (size_t)(length >> 2) * 8u;
        x = end;
#else
        int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
        do {
            const uint32_t in = td_load_s8x4(x);
            x += 4;
            TD_DOT_GROUP4(in, w);
        } while (x != end);
        acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
#endif
    }
    if (length & 3) {
        int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
        const uint32_t in = td_load_tail(x, length & 3, input_offset);
        TD_DOT_GROUP4(in, w);
        acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
    }
}

/* acc + sum over `length` inputs of (x[i] + offset) * w[i] for one channel (a block of one). */
static inline int32_t td_dot_block1(const int8_t *x, int32_t length, int32_t input_offset, const uint32_t *w,
                                    int32_t acc)
{
    const uint32_t offset = td_offset_pair(input_offset);
    for (int32_t groups = length >> 2; groups > 0; --groups) {
        const uint32_t in = td_load_s8x4(x);
        x += 4;
        acc = td_smlad(td_sxtab16(offset, in), w[0], acc);
        acc = td_smlad(td_sxtab16_ror8(offset, in), w[1], acc);
        w += 2;
    }
    const int32_t tail = length & 3;
    if (tail) {
        const uint32_t in = td_load_tail(x, tail, input_offset);
        acc = td_smlad(td_sxtab16(offset, in), w[0], acc);
        acc = td_smlad(td_sxtab16_ror8(offset, in), w[1], acc);
    }
    return acc;
}

/* Per output channel, as the generator lays it out: bias (0 without one), Q31 multiplier, left and right shift
 * (the exponent split as td_multiply_by_quantized_multiplier splits it). One load of four words per output. */
typedef struct {
    int32_t bias;
    int32_t multiplier; /* in [0, 2^31) */
    int32_t left_shift;
    int32_t right_shift;
} td_fast_channel;

typedef struct {
    int32_t input_offset;  /* minus the input zero point */
    int32_t output_offset; /* the output zero point */
    int32_t activation_min;
    int32_t activation_max;
    const td_fast_channel *channels; /* output_depth entries */
    /* NULL, or per block of four channels 20 words: the four biases, then per channel {up, multiplier, round,
     * shift}. The output is then ssat8((2 * y - (y < 0) + round) >> shift), y = SMMULR((acc + bias) << up,
     * multiplier), up = left shift + 1, round = 2^s + output_offset * 2^(s + 1), shift = s + 1 for the right
     * shift s: the reference's requantization exactly while no sum overflows and the clamp is [-128, 127], which
     * the generator proves per layer before it emits this table (tinydeploy/engine/ops/common.py). The last
     * record's shift also holds TD_FOLDED_LAST (a shift by register reads only its low byte). */
    const int32_t *folded;
} td_fast_requant;

#define TD_FOLDED_LAST 0x100 /* in the shift word of the last channel of the last block */

/* td_multiply_by_quantized_multiplier(acc + bias) + offset, clamped. For a multiplier other than INT32_MIN the
 * saturating doubling high multiply is exactly (x * m + 2^30) >> 31, for either sign of the product. */
static inline __attribute__((always_inline)) int8_t td_fast_output(const td_fast_requant *q, int32_t channel,
                                                                   int32_t acc)
{
    const td_fast_channel c = q->channels[channel];
    const int32_t scaled = (int32_t)((uint32_t)(acc + c.bias) << c.left_shift);
    const int32_t high = (int32_t)(((int64_t)scaled * (int64_t)c.multiplier + ((int64_t)1 << 30)) >> 31);
    const int32_t value = td_rounding_divide_by_pot(high, c.right_shift) + q->output_offset;
    return (int8_t)td_clamp_i32(value, q->activation_min, q->activation_max);
}

/* One output of a folded record r = {up, multiplier, round, shift} (td_fast_requant.folded). */
static inline int8_t td_folded_output(const int32_t *r, int32_t acc)
{
    const uint32_t y = (uint32_t)td_smmulr((int32_t)((uint32_t)acc << r[0]), r[1]);
    const int32_t rounded = (int32_t)(y * 2u - (y >> 31) + (uint32_t)r[2]);
    return (int8_t)td_clamp_i32(rounded >> (r[3] & 0xFF), INT8_MIN, INT8_MAX);
}

#if TD_HAVE_DSP
/* Every block of four channels of one output pixel whose inputs are one run x..end (a positive multiple of 4
 * bytes) covering the whole filter, with folded requantization: per block the biases, the dot products (as
 * td_dot_block4_groups), then the four outputs, written after the block's reads like td_dot_row. 7 instructions
 * per output. Every block of the table: the loop ends after the record flagged TD_FOLDED_LAST. */
#define TD_FOLDED_GROUP                                                                                          \
    "ldr r12, [r0], #4\n\t"                                                                                      \
    "sxtab16 lr, r2, r12\n\t"                                                                                    \
    "sxtab16 r12, r2, r12, ror #8\n\t"                                                                           \
    "ldmia r3!, {r4, r5, r6, r7}\n\t"                                                                            \
    "smlad r8, lr, r4, r8\n\t"                                                                                   \
    "smlad r8, r12, r5, r8\n\t"                                                                                  \
    "smlad r9, lr, r6, r9\n\t"                                                                                   \
    "smlad r9, r12, r7, r9\n\t"                                                                                  \
    "ldmia r3!, {r4, r5, r6, r7}\n\t"                                                                            \
    "smlad r10, lr, r4, r10\n\t"                                                                                 \
    "smlad r10, r12, r5, r10\n\t"                                                                                \
    "smlad r11, lr, r6, r11\n\t"                                                                                 \
    "smlad r11, r12, r7, r11\n\t"
#define TD_FOLDED_OUTPUT(acc)                                                                                    \
    "ldmia r12!, {r4, r5, r6, r7}\n\t"                                                                           \
    "lsl " acc ", " acc ", r4\n\t"                                                                               \
    "smmulr " acc ", " acc ", r5\n\t"                                                                            \
    "add r4, r6, " acc ", lsl #1\n\t"                                                                            \
    "sub r4, r4, " acc ", lsr #31\n\t"                                                                           \
    "asr r4, r4, r7\n\t"                                                                                        \
    "ssat r4, #8, r4\n\t"                                                                                       \
    "strb r4, [lr], #1\n\t"
/* `groups` is the inner loop's body: one TD_FOLDED_GROUP, or two when the run is a multiple of 8 bytes. */
#define TD_FOLDED_BLOCKS(groups)                                                                                 \
    __asm__ volatile(                                                                                            \
        "push {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n" /* x at [sp], folded and out at sp + 40, 44 */       \
        "1:\n\t"                                                                                                 \
        "ldr r12, [sp, #40]\n\t"                                                                                 \
        "ldmia r12!, {r8, r9, r10, r11}\n\t"                                                                     \
        "str r12, [sp, #40]\n\t"                                                                                 \
        "ldr r0, [sp]\n"                                                                                         \
        "2:\n\t"                                                                                                 \
        groups                                                                                                   \
        "cmp r0, r1\n\t"                                                                                         \
        "bne 2b\n\t"                                                                                             \
        "ldr r12, [sp, #40]\n\t"                                                                                 \
        "ldr lr, [sp, #44]\n\t"                                                                                  \
        TD_FOLDED_OUTPUT("r8") TD_FOLDED_OUTPUT("r9") TD_FOLDED_OUTPUT("r10") TD_FOLDED_OUTPUT("r11")            \
        "str r12, [sp, #40]\n\t"                                                                                 \
        "str lr, [sp, #44]\n\t"                                                                                  \
        "tst r7, #256\n\t" /* the last block's flag (TD_FOLDED_LAST) */                                          \
        "beq 1b\n\t"                                                                                             \
        "pop {r0, r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t")

__attribute__((naked, noinline, unused)) static void td_dot_blocks_folded_by4(TD_ARG const int8_t *x,
                                                                              TD_ARG const int8_t *end,
                                                                              TD_ARG uint32_t offset,
                                                                              TD_ARG const uint32_t *w,
                                                                              TD_ARG const int32_t *folded,
                                                                              TD_ARG int8_t *out)
{
    TD_FOLDED_BLOCKS(TD_FOLDED_GROUP);
}

/* The same for a run of a multiple of 8 bytes, two groups per loop test. */
__attribute__((naked, noinline, unused)) static void td_dot_blocks_folded_by8(TD_ARG const int8_t *x,
                                                                              TD_ARG const int8_t *end,
                                                                              TD_ARG uint32_t offset,
                                                                              TD_ARG const uint32_t *w,
                                                                              TD_ARG const int32_t *folded,
                                                                              TD_ARG int8_t *out)
{
    TD_FOLDED_BLOCKS(TD_FOLDED_GROUP TD_FOLDED_GROUP);
}
#undef TD_FOLDED_GROUP
#undef TD_FOLDED_OUTPUT
#undef TD_FOLDED_BLOCKS

static inline void td_dot_blocks_folded(const int8_t *x, const int8_t *end, uint32_t offset, const uint32_t *w,
                                        const int32_t *folded, int8_t *out)
{
    if (((end - x) & 7) == 0) {
        td_dot_blocks_folded_by8(x, end, offset, w, folded, out);
    } else {
        td_dot_blocks_folded_by4(x, end, offset, w, folded, out);
    }
}
#else
/* The portable form of td_dot_blocks_folded (the same arithmetic). */
static inline void td_dot_blocks_folded(const int8_t *x, const int8_t *end, uint32_t offset, const uint32_t *w,
                                        const int32_t *folded, int8_t *out)
{
    const int32_t input_offset = td_low_s16(offset);
    for (int last = 0; !last; folded += 20, out += 4) {
        last = (folded[19] & TD_FOLDED_LAST) != 0;
        int32_t acc[4] = {folded[0], folded[1], folded[2], folded[3]};
        td_dot_block4(x, (int32_t)(end - x), input_offset, w, acc);
        w += (size_t)(end - x) * 2u;
        for (int32_t c = 0; c < 4; ++c) {
            out[c] = td_folded_output(folded + 4 + 4 * c, acc[c]);
        }
    }
}
#endif

/* One row of outputs: `depth` channels from inputs given as `count` segments (pointer, length, first group). */
typedef struct {
    const int8_t *x;
    int32_t length;
    int32_t first_group;
} td_segment;

static inline void td_dot_row(const td_fast_requant *q, const td_segment *segments, int32_t count,
                              const uint32_t *weights, int32_t groups, int32_t depth, int8_t *out)
{
    const int32_t blocks = depth >> 2;
    int32_t block = 0;
    if (q->folded != NULL && count == 1 && groups > 0 && segments[0].length == groups * 4 && blocks > 0) {
        td_dot_blocks_folded(segments[0].x, segments[0].x + segments[0].length, td_offset_pair(q->input_offset),
                             weights, q->folded, out);
        if (blocks * 4 == depth) {
            return;
        }
        block = blocks;
    }
    for (; block < blocks; ++block) {
        const uint32_t *w = weights + (size_t)block * (size_t)groups * 8u;
        int32_t acc[4] = {0, 0, 0, 0};
        if (q->folded != NULL) {
            memcpy(acc, q->folded + (size_t)block * 20u, sizeof acc); /* the biases */
        }
        for (int32_t s = 0; s < count; ++s) {
            const uint32_t *first = w + (size_t)segments[s].first_group * 8u;
#if TD_HAVE_DSP
            if (segments[s].length > 0 && (segments[s].length & 3) == 0) { /* straight to the assembly loop */
                td_dot_block4_groups(segments[s].x, segments[s].x + segments[s].length,
                                     td_offset_pair(q->input_offset), first, acc);
                continue;
            }
#endif
            td_dot_block4(segments[s].x, segments[s].length, q->input_offset, first, acc);
        }
        /* Written after this block's reads: the reference kernels' write order, which the planner relies on. */
        const int32_t channel = block * 4;
        if (q->folded != NULL) {
            const int32_t *fold = q->folded + (size_t)block * 20u;
            out[channel] = td_folded_output(fold + 4, acc[0]);
            out[channel + 1] = td_folded_output(fold + 8, acc[1]);
            out[channel + 2] = td_folded_output(fold + 12, acc[2]);
            out[channel + 3] = td_folded_output(fold + 16, acc[3]);
            continue;
        }
        out[channel] = td_fast_output(q, channel, acc[0]);
        out[channel + 1] = td_fast_output(q, channel + 1, acc[1]);
        out[channel + 2] = td_fast_output(q, channel + 2, acc[2]);
        out[channel + 3] = td_fast_output(q, channel + 3, acc[3]);
    }
    const uint32_t *singles = weights + (size_t)blocks * (size_t)groups * 8u;
    for (int32_t channel = blocks * 4; channel < depth; ++channel) {
        const uint32_t *w = singles + (size_t)(channel - blocks * 4) * (size_t)groups * 2u;
        int32_t acc = 0;
        for (int32_t s = 0; s < count; ++s) {
            acc = td_dot_block1(segments[s].x, segments[s].length, q->input_offset,
                                w + (size_t)segments[s].first_group * 2u, acc);
        }
        out[channel] = td_fast_output(q, channel, acc);
    }
}

#endif /* TD_DOT_H */
