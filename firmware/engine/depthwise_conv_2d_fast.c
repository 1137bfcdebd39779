/* Fast DEPTHWISE_CONV_2D (NHWC) for the Cortex-M4 DSP extension; depthwise_conv_2d.c is its oracle.
 *
 * One output pixel at a time, every tap through a table of input pointers (a tap outside the input points at a
 * row of zero points). Blocks of four channels: one word load gives four input channels, SXTB16 splits them into
 * (c0, c2) and (c1, c3) and the int8 weight word the same way, and SMLABB/SMLATT accumulate each channel. 3x3
 * windows with folded requantization run hand-scheduled (10 instructions per tap and block); the rest runs the
 * same arithmetic in C. Remaining channels (all of them when the depth multiplier is not 1) go one at a time. */
#include "depthwise_conv_2d_fast.h"

#include <stddef.h>

#include "td_quant.h"
#include "td_simd.h"

/* What the 3x3 assembly reads (field offsets are fixed). */
typedef struct {
    const int8_t *const *taps; /* [0] nine input pointers, channel 0 of each tap, before adding `at` */
    int8_t *out;               /* [4] the block's first output (advanced per block) */
    const int32_t *records;    /* [8] the first block's */
    const int8_t *weights;     /* [12] the first block's */
    int32_t at;                /* [16] added to every tap pointer: 4 * block (plus a pixel offset) */
    int32_t at_end;            /* [20] `at` after the last block */
    int32_t pixels;            /* [24] scaled kernel: pixels of a run (the next one `step` bytes on), else 1 */
    int32_t step;              /* [28] */
    int32_t step_back;         /* [32] step - 4 * blocks */
} dw_call;

#if TD_HAVE_DSP
#define DW_TAP(offset, weight)                                                                                   \
    "ldr r4, [r0, #" offset "]\n\t"                                                                              \
    "ldr r4, [r4, r3]\n\t"                                                                                       \
    "sxtb16 r5, r4\n\t"                                                                                          \
    "sxtb16 r4, r4, ror #8\n\t"                                                                                  \
    "sxtb16 lr, " weight "\n\t"                                                                                  \
    "sxtb16 " weight ", " weight ", ror #8\n\t"                                                                  \
    "smlabb r8, r5, lr, r8\n\t"                                                                                  \
    "smlatt r10, r5, lr, r10\n\t"                                                                                \
    "smlabb r9, r4, " weight ", r9\n\t"                                                                          \
    "smlatt r11, r4, " weight ", r11\n\t"
#define DW_OUTPUT(acc)                                                                                           \
    "ldm r2!, {r4, r5, r6}\n\t"                                                                                  \
    "lsl " acc ", " acc ", r4\n\t"                                                                               \
    "add r6, r6, " acc ", asr #31\n\t"                                                                           \
    "smmlar r6, " acc ", r5, r6\n\t"                                                                             \
    "lsr r4, r4, #8\n\t"                                                                                         \
    "asr r6, r6, r4\n\t"                                                                                         \
    "ssat r6, #8, r6\n\t"                                                                                        \
    "strb r6, [lr], #1\n\t"
/* Every block of one pixel, 3x3, folded requantization (td_dot.h). Registers: r0 tap table, r1 weights, r2
 * records, r3 at, r8-r11 the four channels' sums. */
__attribute__((naked, noinline)) static void dw_blocks_3x3_folded(__attribute__((unused)) dw_call *call)
{
    __asm__ volatile(
        "push {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "ldr r1, [r0, #12]\n\t"
        "ldr r2, [r0, #8]\n\t"
        "ldr r3, [r0, #16]\n\t"
        "ldr r0, [r0]\n"
        "1:\n\t"
        "ldm r2!, {r8, r9, r10, r11}\n\t"
        "ldm r1!, {r6, r7, r12}\n\t"
        DW_TAP("0", "r6") DW_TAP("4", "r7") DW_TAP("8", "r12")
        "ldm r1!, {r6, r7, r12}\n\t"
        DW_TAP("12", "r6") DW_TAP("16", "r7") DW_TAP("20", "r12")
        "ldm r1!, {r6, r7, r12}\n\t"
        DW_TAP("24", "r6") DW_TAP("28", "r7") DW_TAP("32", "r12")
        "ldr r12, [sp]\n\t"
        "ldr lr, [r12, #4]\n\t"
        DW_OUTPUT("r8") DW_OUTPUT("r9") DW_OUTPUT("r10") DW_OUTPUT("r11")
        "str lr, [r12, #4]\n\t"
        "add r3, r3, #4\n\t"
        "ldr r4, [r12, #20]\n\t"
        "cmp r3, r4\n\t"
        "bne 1b\n\t"
        "pop {r0, r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}
#undef DW_TAP
#undef DW_OUTPUT
#endif

#if TD_HAVE_DSP
#define DW_TAP_SCALED(offset)                                                                                    \
    "ldr r4, [r0, #" offset "]\n\t"                                                                              \
    "ldr r4, [r4, r3]\n\t"                                                                                       \
    "sxtb16 r5, r4\n\t"                                                                                          \
    "sxtb16 r4, r4, ror #8\n\t"                                                                                  \
    "ldrd r6, r7, [r1], #8\n\t"                                                                                  \
    "smlabb r8, r5, r6, r8\n\t"                                                                                  \
    "smlatt r10, r5, r6, r10\n\t"                                                                                \
    "smlabb r9, r4, r7, r9\n\t"                                                                                  \
    "smlatt r11, r4, r7, r11\n\t"
#define DW_OUTPUT_SCALED(acc)                                                                                    \
    "ldm r2!, {r4, r5, r6}\n\t"                                                                                  \
    "lsr r4, r4, #8\n\t"                                                                                         \
    "add r6, r6, " acc ", asr #31\n\t"                                                                           \
    "smmlar r6, " acc ", r5, r6\n\t"                                                                             \
    "asr r6, r6, r4\n\t"                                                                                         \
    "ssat r6, #8, r6\n\t"                                                                                        \
    "strb r6, [lr], #1\n\t"
/* Every block of a run of pixels (their outputs contiguous: every channel in a block), 3x3, weights and biases
 * prescaled in scratch (call->weights). Registers: r0 tap table, r1 scratch, r2 records, r3 at, r12 at_end, lr
 * out, r8-r11 the sums (already scaled by 2^up). */
__attribute__((naked, noinline)) static void dw_blocks_3x3_scaled(__attribute__((unused)) dw_call *call)
{
    __asm__ volatile(
        "push {r0, r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "ldr r1, [r0, #12]\n\t"
        "ldr r2, [r0, #8]\n\t"
        "ldr r3, [r0, #16]\n\t"
        "ldr r12, [r0, #20]\n\t"
        "ldr lr, [r0, #4]\n\t"
        "ldr r0, [r0]\n"
        "1:\n\t"
        "ldm r1!, {r8, r9, r10, r11}\n\t"
        DW_TAP_SCALED("0") DW_TAP_SCALED("4") DW_TAP_SCALED("8")
        DW_TAP_SCALED("12") DW_TAP_SCALED("16") DW_TAP_SCALED("20")
        DW_TAP_SCALED("24") DW_TAP_SCALED("28") DW_TAP_SCALED("32")
        "add r2, r2, #16\n\t" /* the records' own biases: the scaled ones are in scratch */
        DW_OUTPUT_SCALED("r8") DW_OUTPUT_SCALED("r9") DW_OUTPUT_SCALED("r10") DW_OUTPUT_SCALED("r11")
        "add r3, r3, #4\n\t"
        "cmp r3, r12\n\t"
        "bne 1b\n\t"
        "ldr r4, [sp]\n\t" /* the next pixel of the run */
        "ldr r5, [r4, #24]\n\t"
        "subs r5, r5, #1\n\t"
        "beq 2f\n\t"
        "str r5, [r4, #24]\n\t"
        "ldrd r5, r6, [r4, #28]\n\t"
        "add r12, r12, r5\n\t"
        "add r3, r3, r6\n\t"
        "ldr r1, [r4, #12]\n\t"
        "ldr r2, [r4, #8]\n\t"
        "b 1b\n"
        "2:\n\t"
        "pop {r0, r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t");
}
#undef DW_TAP_SCALED
#undef DW_OUTPUT_SCALED
#endif

static int8_t *dw_pixel_scaled_c(const dw_call *call, int32_t at_start, int32_t at_end, int8_t *out);

/* The same, portable form. */
static TD_NOINLINE TD_HOT void dw_blocks_3x3_scaled_c(const dw_call *call)
{
    int8_t *out = call->out;
    for (int32_t pixel = 0, first = call->at; pixel < call->pixels; ++pixel, first += call->step) {
        out = dw_pixel_scaled_c(call, first, first + (call->at_end - call->at), out);
    }
}

static int8_t *dw_pixel_scaled_c(const dw_call *call, int32_t at_start, int32_t at_end, int8_t *out)
{
    const int32_t *w = (const int32_t *)(const void *)call->weights;
    const int32_t *r = call->records;
    for (int32_t at = at_start; at != at_end; at += 4, r += TD_MAT_BLOCK_WORDS, out += 4) {
        int32_t a0 = w[0], a1 = w[1], a2 = w[2], a3 = w[3];
        w += 4;
        for (int32_t k = 0; k < 9; ++k, w += 2) {
            const uint32_t in = td_load_s8x4(call->taps[k] + at);
            const uint32_t even = td_sxtb16(in), odd = td_sxtb16_ror8(in);
            a0 = td_smlabb(even, (uint32_t)w[0], a0);
            a2 = td_smlatt(even, (uint32_t)w[0], a2);
            a1 = td_smlabb(odd, (uint32_t)w[1], a1);
            a3 = td_smlatt(odd, (uint32_t)w[1], a3);
        }
        const int32_t acc[4] = {a0, a1, a2, a3};
        for (int32_t c = 0; c < 4; ++c) {
            const int32_t *record = r + 4 + 3 * c;
            const int32_t right = (int32_t)(((uint32_t)record[0] >> 8) & 0xFFu);
            out[c] = (int8_t)td_ssat8(td_smmlar(acc[c], record[1], record[2] + (acc[c] >> 31)) >> right);
        }
    }
    return out;
}

/* The blocks' weights widened into (c0, c2), (c1, c3) pairs and their biases, each channel scaled by 2^up. */
static TD_NOINLINE void dw_prescale(const td_depthwise_conv_2d_fast_params *params, int32_t *scratch)
{
    const int8_t *w = params->weights;
    const int32_t *r = params->records;
    for (int32_t block = 0; block < params->blocks; ++block, r += TD_MAT_BLOCK_WORDS) {
        int32_t up[4];
        for (int32_t c = 0; c < 4; ++c) {
            up[c] = (int32_t)((uint32_t)r[4 + 3 * c] & 0xFFu);
            *scratch++ = (int32_t)((uint32_t)r[c] << up[c]);
        }
        for (int32_t k = 0; k < 9; ++k, w += 4, scratch += 2) {
            scratch[0] = (int32_t)td_pack_s16(w[0] * (1 << up[0]), w[2] * (1 << up[2]));
            scratch[1] = (int32_t)td_pack_s16(w[1] * (1 << up[1]), w[3] * (1 << up[3]));
        }
    }
}

/* Every block of one pixel, any window, portable form of the same arithmetic. */
static TD_NOINLINE TD_HOT void dw_blocks_c(const dw_call *call, int32_t taps, const td_mat_quant *q)
{
    const int8_t *w = call->weights;
    const int32_t *r = call->records;
    int8_t *out = call->out;
    for (int32_t at = call->at; at != call->at_end; at += 4, r += TD_MAT_BLOCK_WORDS, out += 4) {
        int32_t a0 = r[0], a1 = r[1], a2 = r[2], a3 = r[3];
        for (int32_t k = 0; k < taps; ++k, w += 4) {
            const uint32_t in = td_load_s8x4(call->taps[k] + at);
            const uint32_t even = td_sxtb16(in), odd = td_sxtb16_ror8(in);
            const uint32_t word = td_load_s8x4(w);
            const uint32_t w02 = td_sxtb16(word), w13 = td_sxtb16_ror8(word);
            a0 = td_smlabb(even, w02, a0);
            a2 = td_smlatt(even, w02, a2);
            a1 = td_smlabb(odd, w13, a1);
            a3 = td_smlatt(odd, w13, a3);
        }
        const int32_t acc[4] = {a0, a1, a2, a3};
        for (int32_t c = 0; c < 4; ++c) {
            out[c] = td_mat_output(q, acc[c], (uint32_t)r[4 + 3 * c], r[5 + 3 * c], r[6 + 3 * c]);
        }
    }
}

/* Channels first.. one at a time (any depth multiplier); tap k's input channel c is at tap[k][at + c]. */
static TD_NOINLINE void dw_singles(const int8_t *const *tap, int32_t at, int32_t taps, int32_t first,
                                   int32_t channels, int32_t multiplier, const int8_t *w, const int32_t *r,
                                   const td_mat_quant *q, int8_t *out)
{
    for (int32_t oc = first; oc < channels; ++oc, w += taps, r += TD_MAT_SINGLE_WORDS) {
        const int32_t ic = at + oc / multiplier;
        int32_t acc = r[0];
        for (int32_t k = 0; k < taps; ++k) {
            acc += (int32_t)w[k] * (int32_t)tap[k][ic];
        }
        out[oc] = td_mat_output(q, acc, (uint32_t)r[1], r[2], r[3]);
    }
}

static void dw_run(const td_depthwise_conv_2d_fast_params *params, const int8_t *input, int32_t *scaled,
                   int8_t *output);

void td_depthwise_conv_2d_fast_s8(const td_depthwise_conv_2d_fast_params *params, const int8_t *input,
                                  int32_t *scratch, int8_t *output)
{
    const int32_t bytes = params->scratch_bytes;
    if (bytes == 0) {
        dw_run(params, input, NULL, output);
        return;
    }
    if (bytes != 4 * TD_DW_SCRATCH_BLOCK_WORDS * params->blocks || (scratch == NULL && bytes > TD_STACK_SCRATCH_MAX)) {
        return; /* the generator never emits these */
    }
    if (scratch != NULL) {
        dw_prescale(params, scratch);
        dw_run(params, input, scratch, output);
        return;
    }
    int32_t words[bytes / 4]; /* on the stack: at most TD_STACK_SCRATCH_MAX bytes */
    dw_prescale(params, words);
    dw_run(params, input, words, output);
}

/* scaled: the prescaled blocks (3x3, folded), or NULL. */
static void dw_run(const td_depthwise_conv_2d_fast_params *params, const int8_t *input, int32_t *scaled,
                   int8_t *output)
{
    const td_window *win = &params->window;
    const td_mat_quant *q = &params->quant;
    const int32_t taps = win->filter_height * win->filter_width;
    if (taps <= 0 || taps > TD_DW_FAST_MAX_TAPS || params->depth_multiplier <= 0) {
        return; /* the generator never emits these */
    }
    const size_t depth = (size_t)win->input_depth;
    const int32_t blocks = params->blocks;
    const int8_t *single_weights = params->weights + (size_t)blocks * (size_t)taps * 4u;
    const int32_t *single_records = params->records + (size_t)blocks * TD_MAT_BLOCK_WORDS;
#if TD_HAVE_DSP
    const int assembly = win->filter_height == 3 && win->filter_width == 3 && q->folded && blocks > 0;
#endif
    /* A window inside the input reads tap k at inner[k] + (its first pixel's offset): one table per image. */
    const int8_t *inner[TD_DW_FAST_MAX_TAPS];
    const int8_t *border[TD_DW_FAST_MAX_TAPS];
    const int32_t last_row = (win->filter_height - 1) * win->dilation_height;
    const int32_t last_column = (win->filter_width - 1) * win->dilation_width;
    int8_t *out = output;
    for (int32_t b = 0; b < win->batches; ++b) {
        const int8_t *image = input + (size_t)b * (size_t)win->input_height * (size_t)win->input_width * depth;
        for (int32_t k = 0; k < taps; ++k) {
            inner[k] = image + ((size_t)(k / win->filter_width * win->dilation_height) * (size_t)win->input_width +
                                (size_t)(k % win->filter_width * win->dilation_width)) * depth;
        }
        for (int32_t out_y = 0; out_y < win->output_height; ++out_y) {
            const int32_t y0 = out_y * win->stride_height - win->pad_top;
            const int rows_inside = y0 >= 0 && y0 + last_row < win->input_height;
            for (int32_t out_x = 0; out_x < win->output_width; ++out_x, out += win->output_depth) {
                const int32_t x0 = out_x * win->stride_width - win->pad_left;
                const int8_t *const *tap = inner;
                int32_t at = 0, run = 1;
                if (rows_inside && x0 >= 0 && x0 + last_column < win->input_width) {
                    at = (int32_t)(((size_t)y0 * (size_t)win->input_width + (size_t)x0) * depth);
                    if (scaled != NULL && blocks * 4 == win->output_depth) { /* the pixels inside up to the border */
                        run = td_min_i32((win->input_width - 1 - last_column - x0) / win->stride_width + 1,
                                         win->output_width - out_x);
                    }
                } else {
                    int32_t k = 0;
                    for (int32_t fy = 0; fy < win->filter_height; ++fy) {
                        const int32_t y = y0 + fy * win->dilation_height;
                        for (int32_t fx = 0; fx < win->filter_width; ++fx, ++k) {
                            const int32_t x = x0 + fx * win->dilation_width;
                            const int in = y >= 0 && y < win->input_height && x >= 0 && x < win->input_width;
                            border[k] = in ? image + ((size_t)y * (size_t)win->input_width + (size_t)x) * depth
                                           : params->padding;
                        }
                    }
                    tap = border;
                }
                if (blocks > 0 && scaled != NULL) {
                    const int32_t step = win->stride_width * win->input_depth;
                    dw_call call = {tap, out, params->records, (const int8_t *)scaled, at, at + 4 * blocks, run,
                                    step, step - 4 * blocks};
#if TD_HAVE_DSP
                    dw_blocks_3x3_scaled(&call);
#else
                    dw_blocks_3x3_scaled_c(&call);
#endif
                } else if (blocks > 0) {
                    dw_call call = {tap, out, params->records, params->weights, at, at + 4 * blocks, 1, 0, 0};
#if TD_HAVE_DSP
                    if (assembly) {
                        dw_blocks_3x3_folded(&call);
                    } else {
                        dw_blocks_c(&call, taps, q);
                    }
#else
                    dw_blocks_c(&call, taps, q);
#endif
                }
                if (blocks * 4 < win->output_depth) {
                    dw_singles(tap, at, taps, blocks * 4, win->output_depth, params->depth_multiplier,
                               single_weights, single_records, q, out);
                }
                out_x += run - 1;
                out += (size_t)(run - 1) * (size_t)win->output_depth;
            }
        }
    }
}
