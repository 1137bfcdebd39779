/* Fast CONV_2D: each output pixel's receptive field is widened once into int16 pairs (straight from the input
 * rows when input_depth % 4 == 0, else through an im2col patch), then multiplied against the int8 weights of
 * every output channel, four pixels per pass where the scratch allows (td_dot.h). */
#include "conv_2d_fast.h"

#include <stddef.h>
#include <string.h>

static inline void widen(const int8_t *x, int32_t groups, uint32_t offset, uint32_t *dst, int32_t step)
{
    if (step == 8) {
        td_widen_step8(x, groups, offset, dst);
    } else {
        td_widen_step2(x, groups, offset, dst);
    }
}

/* n bytes, a word at a time (the M4 loads and stores words at any address). */
static inline void copy(int8_t *to, const int8_t *from, int32_t n)
{
    for (; n >= 4; n -= 4, to += 4, from += 4) {
        const uint32_t word = td_load_s8x4(from);
        memcpy(to, &word, sizeof word);
    }
    for (; n > 0; --n) {
        *to++ = *from++;
    }
}

static inline void fill(int8_t *to, int8_t value, int32_t n)
{
    if (n > 3) {
        memset(to, value, (size_t)n);
        return;
    }
    for (; n > 0; --n) { /* (the compiler would call memset for these few bytes) */
        *to++ = value;
        __asm__("" ::: "memory");
    }
}

/* The receptive field of the output pixel whose window starts at (y0, x0) of `image`, as pairs every `step`
 * words of dst; padding as zero pairs. patch (NULL when input_depth % 4 == 0): groups * 4 bytes for the im2col
 * gather, padding as the input zero point. */
static TD_HOT void widen_pixel(const td_window *w, const int8_t *image, int32_t y0, int32_t x0, uint32_t offset,
                        int8_t *patch, int32_t groups, uint32_t *dst, int32_t step)
{
    const size_t depth = (size_t)w->input_depth;
    const size_t row_bytes = (size_t)w->input_width * depth;
    if (patch == NULL) {
        const int32_t depth_groups = w->input_depth / 4;
        const int32_t row_groups = w->filter_width * depth_groups;
        if (y0 >= 0 && y0 + (w->filter_height - 1) * w->dilation_height < w->input_height && x0 >= 0 &&
            x0 + w->filter_width <= w->input_width && w->dilation_width == 1) { /* inside: one run per row */
            const int8_t *row = image + (size_t)y0 * row_bytes + (size_t)x0 * depth;
            const size_t row_step = (size_t)w->dilation_height * row_bytes;
            for (int32_t fy = 0; fy < w->filter_height; ++fy, row += row_step) {
                widen(row, row_groups, offset, dst, step);
                dst += (size_t)row_groups * (size_t)step;
            }
            return;
        }
        for (int32_t fy = 0; fy < w->filter_height; ++fy, dst += (size_t)row_groups * (size_t)step) {
            const int32_t in_y = y0 + fy * w->dilation_height;
            if (in_y < 0 || in_y >= w->input_height) {
                td_widen_zero(row_groups, dst, step);
                continue;
            }
            const int8_t *row = image + (size_t)in_y * row_bytes;
            if (w->dilation_width == 1) {
                const int32_t lo = x0 < 0 ? td_min_i32(-x0, w->filter_width) : 0;
                const int32_t hi = td_max_i32(lo, td_min_i32(w->filter_width, w->input_width - x0));
                uint32_t *at = dst;
                td_widen_zero(lo * depth_groups, at, step);
                at += (size_t)(lo * depth_groups) * (size_t)step;
                widen(row + (size_t)(x0 + lo) * depth, (hi - lo) * depth_groups, offset, at, step);
                at += (size_t)((hi - lo) * depth_groups) * (size_t)step;
                td_widen_zero((w->filter_width - hi) * depth_groups, at, step);
                continue;
            }
            uint32_t *at = dst;
            for (int32_t fx = 0; fx < w->filter_width; ++fx, at += (size_t)depth_groups * (size_t)step) {
                const int32_t in_x = x0 + fx * w->dilation_width;
                if (in_x < 0 || in_x >= w->input_width) {
                    td_widen_zero(depth_groups, at, step);
                } else {
                    widen(row + (size_t)in_x * depth, depth_groups, offset, at, step);
                }
            }
        }
        return;
    }
    const int8_t zero_point = (int8_t)(-td_low_s16(offset));
    const int32_t run = w->filter_width * w->input_depth;
    int8_t *to = patch;
    if (y0 >= 0 && y0 + (w->filter_height - 1) * w->dilation_height < w->input_height && x0 >= 0 &&
        x0 + w->filter_width <= w->input_width && w->dilation_width == 1) { /* the window is inside: rows */
        const int8_t *row = image + (size_t)y0 * row_bytes + (size_t)x0 * depth;
        const size_t row_step = (size_t)w->dilation_height * row_bytes;
        for (int32_t fy = 0; fy < w->filter_height; ++fy, to += run, row += row_step) {
            copy(to, row, run);
        }
        fill(to, zero_point, (int32_t)(patch + (size_t)groups * 4u - to));
        widen(patch, groups, offset, dst, step);
        return;
    }
    for (int32_t fy = 0; fy < w->filter_height; ++fy, to += run) {
        const int32_t in_y = y0 + fy * w->dilation_height;
        if (in_y < 0 || in_y >= w->input_height) {
            fill(to, zero_point, run);
            continue;
        }
        const int8_t *row = image + (size_t)in_y * row_bytes;
        if (w->dilation_width == 1) {
            const int32_t lo = x0 < 0 ? td_min_i32(-x0, w->filter_width) : 0;
            const int32_t hi = td_max_i32(lo, td_min_i32(w->filter_width, w->input_width - x0));
            fill(to, zero_point, lo * w->input_depth);
            copy(to + (size_t)lo * depth, row + (size_t)(x0 + lo) * depth, (hi - lo) * w->input_depth);
            fill(to + (size_t)hi * depth, zero_point, (w->filter_width - hi) * w->input_depth);
            continue;
        }
        for (int32_t fx = 0; fx < w->filter_width; ++fx) {
            const int32_t in_x = x0 + fx * w->dilation_width;
            if (in_x < 0 || in_x >= w->input_width) {
                fill(to + (size_t)fx * depth, zero_point, w->input_depth);
            } else {
                copy(to + (size_t)fx * depth, row + (size_t)in_x * depth, w->input_depth);
            }
        }
    }
    fill(to, zero_point, (int32_t)(patch + (size_t)groups * 4u - to)); /* up to a whole group */
    widen(patch, groups, offset, dst, step);
}

static TD_NOINLINE void conv_run(const td_conv_2d_fast_params *params, const int8_t *input, uint32_t *pairs,
                                 int8_t *output)
{
    const td_window *w = &params->window;
    const td_mat_quant *q = &params->quant;
    const uint32_t offset = td_offset_pair(q->input_offset);
    const int32_t groups = params->groups;
    const int32_t pixels4 = params->pixels4;
    int8_t *patch = (w->input_depth & 3) != 0 ? (int8_t *)(pairs + (size_t)groups * (pixels4 ? 8u : 2u)) : NULL;
    const size_t image_bytes = (size_t)w->input_height * (size_t)w->input_width * (size_t)w->input_depth;
    const int32_t per_image = w->output_height * w->output_width;
    const int32_t total = w->batches * per_image;
    const int32_t depth = w->output_depth;
    /* 1x1 without padding: a pixel's receptive field is one run of the input */
    const int pointwise = w->filter_height == 1 && w->filter_width == 1 && w->pad_top == 0 && w->pad_left == 0 &&
                          patch == NULL;
    const size_t row_step = (size_t)w->stride_height * (size_t)w->input_width * (size_t)w->input_depth;
    const size_t column_step = (size_t)w->stride_width * (size_t)w->input_depth;
    int32_t b = 0, out_y = 0, out_x = 0; /* of pixel n */
    for (int32_t n = 0; n < total;) {
        const int32_t count = pixels4 ? td_min_i32(4, total - n) : 1;
        int32_t slot = 0; /* where pixel n's pairs go */
        if (count < 4 && pixels4 && n >= 4) {
            /* The last 1-3 pixels: keep the previous pass's last 4 - count pixels (moved to the first slots) and
             * run four again; those outputs are written a second time with the same values, from scratch. */
            slot = 4 - count;
            for (uint32_t *group = pairs; group != pairs + (size_t)groups * 8u; group += 8) {
                memmove(group, group + 2 * count, (size_t)slot * 2u * sizeof *group);
            }
        }
        for (int32_t p = slot; p < slot + count; ++p) {
            if (pointwise) {
                widen(input + (size_t)b * image_bytes + (size_t)out_y * row_step + (size_t)out_x * column_step,
                      groups, offset, pairs + 2 * p, pixels4 ? 8 : 2);
            } else {
                widen_pixel(w, input + (size_t)b * image_bytes, out_y * w->stride_height - w->pad_top,
                            out_x * w->stride_width - w->pad_left, offset, patch, groups, pairs + 2 * p,
                            pixels4 ? 8 : 2);
            }
            if (++out_x == w->output_width) {
                out_x = 0;
                if (++out_y == w->output_height) {
                    out_y = 0;
                    ++b;
                }
            }
        }
        int8_t *out = output + (size_t)(n - slot) * (size_t)depth;
        if (pixels4) {
            td_mat4_call call = {out, depth, 1 + 2 * q->output_offset,
                                 params->records + (size_t)params->channels * TD_MAT_RECORD_WORDS, pairs,
                                 4 * groups, params->weights, params->records};
            td_mat_pixels4(&call, slot + count, q);
        } else {
            td_mat_pixel(pairs, groups, params->weights, params->records, depth, q, out);
        }
        n += count;
    }
}

void td_conv_2d_fast_s8(const td_conv_2d_fast_params *params, const int8_t *input, int32_t *scratch,
                        int8_t *output)
{
    const int32_t bytes = params->scratch_bytes;
    const int32_t needed = params->groups * (params->pixels4 ? 32 : 8) +
                           ((params->window.input_depth & 3) != 0 ? params->groups * 4 : 0);
    if (params->groups <= 0 || bytes < needed || (scratch == NULL && bytes > TD_STACK_SCRATCH_MAX)) {
        return; /* the generator never emits these */
    }
    if (scratch != NULL) {
        conv_run(params, input, (uint32_t *)scratch, output);
        return;
    }
    uint32_t words[(bytes + 3) / 4]; /* on the stack: at most TD_STACK_SCRATCH_MAX bytes */
    conv_run(params, input, words, output);
}
