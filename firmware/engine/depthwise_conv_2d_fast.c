/* Fast DEPTHWISE_CONV_2D (NHWC) for the Cortex-M4 DSP extension; depthwise_conv_2d.c is its oracle.
 *
 * One output pixel at a time. With depth multiplier 1, channels go four at a time: one word load gives four input
 * channels, two SXTAB16 widen them (adding the input offset) into (c0, c2) and (c1, c3), and SMLABB/SMLATT against
 * the generator's pre-widened weights accumulate each channel: 9 instructions per tap and four channels. 3x3
 * filters (every depthwise layer of KWS and VWW) run unrolled from a table of the window's nine tap pointers, a tap
 * in the padding pointing at a flash row of input zero points (it adds 0, as the reference's skipped tap does), so
 * border pixels cost what inner ones do. Other filters loop over the taps inside the input. Remaining channels (and
 * every channel when the depth multiplier is not 1) go one at a time. */
#include "depthwise_conv_2d_fast.h"

#include <stddef.h>

#include "td_quant.h"
#include "td_simd.h"

/* Built with the firmware's -Os: measured, O2 here schedules the unrolled taps apart and spills them. */
#if defined(__GNUC__)
#define DW_OWN_FRAME __attribute__((noinline))  /* registers allocated per loop nest, not across all */
#define DW_INLINE __attribute__((always_inline)) /* -Os would call the requantization per channel */
#else
#define DW_OWN_FRAME
#define DW_INLINE
#endif

#define DW_REQUANT_WORDS 3 /* per channel: multiplier, round, shift (see depthwise_conv_2d_fast.h) */

/* The accumulator (scaled by 2^(left_shift + 1)) to the clamped int8 output. SMMULR of the scaled accumulator is
 * the reference's saturating doubling high multiply; adding round and shifting by s + 1 is its rounding divide by
 * 2^s (ties away from zero) plus the output offset. full_range (a constant after inlining): the clamp is
 * [-128, 127], one SSAT. */
static inline DW_INLINE int8_t dw_requantize(int32_t acc, const int32_t *requant, int32_t low, int32_t high,
                                             int full_range)
{
    const uint32_t high_mul = (uint32_t)td_smmulr(acc, requant[0]);
    const int32_t rounded = (int32_t)(high_mul * 2u - (high_mul >> 31) + (uint32_t)requant[1]);
    if (full_range) {
        return (int8_t)td_ssat8(rounded >> requant[2]);
    }
    return (int8_t)td_clamp_i32(rounded >> requant[2], low, high);
}

/* The taps k in [0, filter) whose input coordinate start + k * dilation lies in [0, size). */
typedef struct {
    int32_t first;
    int32_t count;
} dw_taps;

static inline dw_taps dw_valid_taps(int32_t start, int32_t dilation, int32_t filter, int32_t size)
{
    dw_taps taps = {0, 0};
    if (start >= size) {
        return taps;
    }
    taps.first = start < 0 ? (-start + dilation - 1) / dilation : 0;
    const int32_t end = start + (filter - 1) * dilation < size ? filter : (size - start + dilation - 1) / dilation;
    taps.count = end > taps.first ? end - taps.first : 0;
    return taps;
}

/* One tap of a block of four channels: w points at its two weight words. */
#define DW_TAP4(x, w)                                                                                            \
    do {                                                                                                         \
        const uint32_t in_ = td_load_s8x4(x);                                                                    \
        const uint32_t even_ = td_sxtab16(offset, in_), odd_ = td_sxtab16_ror8(offset, in_);                     \
        const uint32_t w02_ = (uint32_t)(w)[0], w13_ = (uint32_t)(w)[1];                                         \
        a0 = td_smlabb(even_, w02_, a0);                                                                         \
        a2 = td_smlatt(even_, w02_, a2);                                                                         \
        a1 = td_smlabb(odd_, w13_, a1);                                                                          \
        a3 = td_smlatt(odd_, w13_, a3);                                                                          \
    } while (0)

#define DW_STORE4()                                                                                              \
    do {                                                                                                         \
        out[0] = dw_requantize(a0, requant, low, high, full_range);                                              \
        out[1] = dw_requantize(a1, requant + DW_REQUANT_WORDS, low, high, full_range);                           \
        out[2] = dw_requantize(a2, requant + 2 * DW_REQUANT_WORDS, low, high, full_range);                       \
        out[3] = dw_requantize(a3, requant + 3 * DW_REQUANT_WORDS, low, high, full_range);                       \
    } while (0)

/* A 3x3 window, every block of four channels: taps[k] points at tap k's input pixel (channel 0), or at a row of
 * input zero points for a tap in the padding, whose (x + input_offset) is 0 like a skipped tap's. */
static inline DW_INLINE void dw_pixel_3x3(const int8_t *const *taps, const int32_t *w, int32_t blocks,
                                          const int32_t *bias, const int32_t *requant, uint32_t offset, int32_t low,
                                          int32_t high, int full_range, int8_t *out)
{
    for (int32_t at = 0; at < 4 * blocks; at += 4) { /* at: the block's first channel */
        int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
        DW_TAP4(taps[0] + at, w);
        DW_TAP4(taps[1] + at, w + 2);
        DW_TAP4(taps[2] + at, w + 4);
        DW_TAP4(taps[3] + at, w + 6);
        DW_TAP4(taps[4] + at, w + 8);
        DW_TAP4(taps[5] + at, w + 10);
        DW_TAP4(taps[6] + at, w + 12);
        DW_TAP4(taps[7] + at, w + 14);
        DW_TAP4(taps[8] + at, w + 16);
        DW_STORE4();
        w += 18;
        bias += 4;
        requant += 4 * DW_REQUANT_WORDS;
        out += 4;
    }
}

/* Any window, clipped to `rows` x `cols` valid taps; w points at the first valid tap's words of block 0. */
static inline DW_INLINE void dw_pixel_blocks(const int8_t *in, int32_t rows, int32_t cols, int32_t col_step,
                                             int32_t row_step, const int32_t *w, int32_t w_row_words,
                                             int32_t block_words, int32_t blocks, const int32_t *bias,
                                             const int32_t *requant, uint32_t offset, int32_t low, int32_t high,
                                             int full_range, int8_t *out)
{
    for (; blocks > 0; --blocks) {
        int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
        const int8_t *row = in;
        const int32_t *w_row = w;
        for (int32_t r = 0; r < rows; ++r) {
            const int8_t *x = row;
            const int32_t *w_tap = w_row;
            for (int32_t c = 0; c < cols; ++c) {
                DW_TAP4(x, w_tap);
                x += col_step;
                w_tap += 2;
            }
            row += row_step;
            w_row += w_row_words;
        }
        DW_STORE4();
        in += 4;
        w += block_words;
        bias += 4;
        requant += 4 * DW_REQUANT_WORDS;
        out += 4;
    }
}

/* The two clamps of each loop nest, compiled apart. */
static DW_OWN_FRAME void dw_pixel_3x3_full(const int8_t *const *taps, const int32_t *w, int32_t blocks,
                                           const int32_t *bias, const int32_t *requant, uint32_t offset,
                                           int8_t *out)
{
    dw_pixel_3x3(taps, w, blocks, bias, requant, offset, INT8_MIN, INT8_MAX, 1, out);
}

static DW_OWN_FRAME void dw_pixel_3x3_clamped(const int8_t *const *taps, const int32_t *w, int32_t blocks,
                                              const int32_t *bias, const int32_t *requant, uint32_t offset,
                                              int32_t low, int32_t high, int8_t *out)
{
    dw_pixel_3x3(taps, w, blocks, bias, requant, offset, low, high, 0, out);
}

/* A run of `pixels` output pixels whose 3x3 windows lie inside the input, blocks only (every channel in a block):
 * tap k of a pixel at in + offsets[k], the next pixel's window in_step bytes on. One call per run, not per pixel. */
static inline DW_INLINE void dw_run_3x3(const int8_t *in, int32_t pixels, int32_t in_step, const int32_t *offsets,
                                        const int32_t *weights, int32_t blocks, const int32_t *bias_start,
                                        const int32_t *requant_start, uint32_t offset, int32_t low, int32_t high,
                                        int full_range, int8_t *out)
{
    for (; pixels > 0; --pixels, in += in_step) {
        const int32_t *w = weights, *bias = bias_start, *requant = requant_start;
        for (int32_t at = 0; at < 4 * blocks; at += 4) {
            const int8_t *x = in + at;
            int32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
            DW_TAP4(x + offsets[0], w);
            DW_TAP4(x + offsets[1], w + 2);
            DW_TAP4(x + offsets[2], w + 4);
            DW_TAP4(x + offsets[3], w + 6);
            DW_TAP4(x + offsets[4], w + 8);
            DW_TAP4(x + offsets[5], w + 10);
            DW_TAP4(x + offsets[6], w + 12);
            DW_TAP4(x + offsets[7], w + 14);
            DW_TAP4(x + offsets[8], w + 16);
            DW_STORE4();
            w += 18;
            bias += 4;
            requant += 4 * DW_REQUANT_WORDS;
            out += 4;
        }
    }
}

static DW_OWN_FRAME void dw_run_3x3_any(const int8_t *in, int32_t pixels, int32_t in_step, const int32_t *offsets,
                                        const int32_t *weights, int32_t blocks, const int32_t *bias,
                                        const int32_t *requant, uint32_t offset, int32_t low, int32_t high,
                                        int8_t *out)
{
    if (low == INT8_MIN && high == INT8_MAX) {
        dw_run_3x3(in, pixels, in_step, offsets, weights, blocks, bias, requant, offset, low, high, 1, out);
    } else {
        dw_run_3x3(in, pixels, in_step, offsets, weights, blocks, bias, requant, offset, low, high, 0, out);
    }
}

static DW_OWN_FRAME void dw_pixel_blocks_any(const int8_t *in, int32_t rows, int32_t cols, int32_t col_step,
                                             int32_t row_step, const int32_t *w, int32_t w_row_words,
                                             int32_t block_words, int32_t blocks, const int32_t *bias,
                                             const int32_t *requant, uint32_t offset, int32_t low, int32_t high,
                                             int8_t *out)
{
    if (low == INT8_MIN && high == INT8_MAX) {
        dw_pixel_blocks(in, rows, cols, col_step, row_step, w, w_row_words, block_words, blocks, bias, requant,
                        offset, low, high, 1, out);
    } else {
        dw_pixel_blocks(in, rows, cols, col_step, row_step, w, w_row_words, block_words, blocks, bias, requant,
                        offset, low, high, 0, out);
    }
}

/* Channels first_channel.. one at a time (any depth multiplier); w: their words, `taps` per channel. */
static DW_OWN_FRAME void dw_pixel_single(const int8_t *in, int32_t rows, int32_t cols, int32_t col_step,
                                         int32_t row_step, const int32_t *w, int32_t w_row_words, int32_t taps,
                                         int32_t first_channel, int32_t channels, int32_t depth_multiplier,
                                         const int32_t *bias, const int32_t *requant, int32_t input_offset,
                                         int32_t low, int32_t high, int8_t *out)
{
    for (int32_t oc = first_channel; oc < channels; ++oc, w += taps) {
        const int8_t *row = in + oc / depth_multiplier;
        const int32_t *w_row = w;
        int32_t acc = bias[oc];
        for (int32_t r = 0; r < rows; ++r) {
            for (int32_t c = 0; c < cols; ++c) {
                acc += w_row[c] * ((int32_t)row[c * col_step] + input_offset);
            }
            row += row_step;
            w_row += w_row_words;
        }
        out[oc] = dw_requantize(acc, requant + oc * DW_REQUANT_WORDS, low, high, 0);
    }
}

/* taps[k] of a 3x3 window at (y0, x0) of batch b: tap k's input pixel, or `padding` outside the input. */
static void dw_tap_pointers(const td_window *win, const int8_t *input, const int8_t *padding, int32_t b,
                            int32_t y0, int32_t x0, const int8_t *taps[9])
{
    for (int32_t fy = 0; fy < 3; ++fy) {
        const int32_t y = y0 + fy * win->dilation_height;
        for (int32_t fx = 0; fx < 3; ++fx) {
            const int32_t x = x0 + fx * win->dilation_width;
            const int inside = y >= 0 && y < win->input_height && x >= 0 && x < win->input_width;
            taps[fy * 3 + fx] = inside ? input + (((size_t)b * (size_t)win->input_height + (size_t)y) *
                                                  (size_t)win->input_width + (size_t)x) * (size_t)win->input_depth
                                       : padding;
        }
    }
}

void td_depthwise_conv_2d_fast_s8(const td_depthwise_conv_2d_fast_params *params, const int8_t *input,
                                  const int32_t *weights, const int32_t *bias, const int32_t *requant,
                                  const int8_t *padding, int8_t *output)
{
    const td_window *win = &params->window;
    const int32_t taps = win->filter_height * win->filter_width;
    const int32_t blocks = params->vector_channels / 4;
    const int32_t *single_weights = weights + (size_t)blocks * (size_t)taps * 2u;
    const int32_t col_step = win->dilation_width * win->input_depth;
    const int32_t row_step = win->dilation_height * win->input_width * win->input_depth;
    const uint32_t offset = td_pack_s16(params->input_offset, params->input_offset);
    const int32_t low = params->activation_min, high = params->activation_max;
    const int table_3x3 = win->filter_height == 3 && win->filter_width == 3 && blocks > 0;
    const int full_range = low == INT8_MIN && high == INT8_MAX;
    /* Whole runs of inner pixels at once when every channel is in a block (a pixel's writes stay in order). */
    const int runs_3x3 = table_3x3 && params->vector_channels == win->output_depth;
    int32_t tap_offsets[9]; /* a whole 3x3 window's taps relative to its first */
    for (int32_t k = 0; k < 9; ++k) {
        tap_offsets[k] = (k / 3) * row_step + (k % 3) * col_step;
    }
    int8_t *out = output;
    for (int32_t b = 0; b < win->batches; ++b) {
        for (int32_t out_y = 0; out_y < win->output_height; ++out_y) {
            const int32_t y0 = out_y * win->stride_height - win->pad_top;
            const dw_taps ys = dw_valid_taps(y0, win->dilation_height, win->filter_height, win->input_height);
            for (int32_t out_x = 0; out_x < win->output_width; ++out_x, out += win->output_depth) {
                const int32_t x0 = out_x * win->stride_width - win->pad_left;
                const int32_t last_x = x0 + 2 * win->dilation_width; /* of a 3x3 window */
                if (runs_3x3 && ys.count == 3 && x0 >= 0 && last_x < win->input_width) {
                    /* This and the following pixels inside the input, up to the right border: one call. */
                    const int32_t pixels = td_min_i32((win->input_width - 1 - last_x) / win->stride_width + 1,
                                                      win->output_width - out_x);
                    const int8_t *in = input + (((size_t)b * (size_t)win->input_height + (size_t)y0) *
                                                (size_t)win->input_width + (size_t)x0) * (size_t)win->input_depth;
                    dw_run_3x3_any(in, pixels, win->stride_width * win->input_depth, tap_offsets, weights, blocks,
                                   bias, requant, offset, low, high, out);
                    out_x += pixels - 1;
                    out += (size_t)(pixels - 1) * (size_t)win->output_depth;
                    continue;
                }
                const dw_taps xs = dw_valid_taps(x0, win->dilation_width, win->filter_width, win->input_width);
                const int8_t *in = input;
                if (ys.count > 0 && xs.count > 0) { /* otherwise only the bias: `in` is never read */
                    in += (((size_t)b * (size_t)win->input_height +
                            (size_t)(y0 + ys.first * win->dilation_height)) * (size_t)win->input_width +
                           (size_t)(x0 + xs.first * win->dilation_width)) * (size_t)win->input_depth;
                }
                const int32_t first_tap = ys.first * win->filter_width + xs.first;
                if (table_3x3) {
                    const int8_t *window[9];
                    if (ys.count == 3 && xs.count == 3) { /* inside: `in` is the first tap */
                        for (int32_t k = 0; k < 9; ++k) {
                            window[k] = in + tap_offsets[k];
                        }
                    } else {
                        dw_tap_pointers(win, input, padding, b, y0, x0, window);
                    }
                    if (full_range) {
                        dw_pixel_3x3_full(window, weights, blocks, bias, requant, offset, out);
                    } else {
                        dw_pixel_3x3_clamped(window, weights, blocks, bias, requant, offset, low, high, out);
                    }
                } else if (blocks > 0) {
                    dw_pixel_blocks_any(in, ys.count, xs.count, col_step, row_step, weights + 2 * first_tap,
                                        2 * win->filter_width, 2 * taps, blocks, bias, requant, offset, low, high,
                                        out);
                }
                if (params->vector_channels < win->output_depth) {
                    dw_pixel_single(in, ys.count, xs.count, col_step, row_step, single_weights + first_tap,
                                    win->filter_width, taps, params->vector_channels, win->output_depth,
                                    params->depth_multiplier, bias, requant, params->input_offset, low, high, out);
                }
            }
        }
    }
}
