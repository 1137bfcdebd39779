/* Fast CONV_2D: per output pixel, the filter rows (or a gathered im2col patch) against blocks of four output
 * channels with SMLAD (td_dot.h). */
#include "conv_2d_fast.h"

#include <stddef.h>
#include <string.h>

/* The pixel's receptive field as contiguous input runs, one per filter row inside the input. */
static int32_t row_segments(const td_window *w, const int8_t *image, int32_t y0, int32_t x0, td_segment *segments)
{
    const int32_t lo = x0 < 0 ? -x0 : 0;
    const int32_t hi = td_min_i32(w->filter_width, w->input_width - x0);
    int32_t count = 0;
    if (lo >= hi) {
        return 0;
    }
    for (int32_t fy = 0; fy < w->filter_height; ++fy) {
        const int32_t in_y = y0 + fy * w->dilation_height;
        if (in_y < 0 || in_y >= w->input_height) {
            continue; /* padding holds the zero point: contributes nothing */
        }
        segments[count].x = image + ((size_t)in_y * (size_t)w->input_width + (size_t)(x0 + lo)) *
                                        (size_t)w->input_depth;
        segments[count].length = (hi - lo) * w->input_depth;
        segments[count].first_group = (fy * w->filter_width + lo) * w->input_depth / 4;
        ++count;
    }
    return count;
}

/* The pixel's receptive field gathered into patch ([height][width][input] order), padding as the zero point. */
static void gather_patch(const td_window *w, const int8_t *image, int32_t y0, int32_t x0, int8_t zero_point,
                         int8_t *patch, int32_t patch_bytes)
{
    const size_t depth = (size_t)w->input_depth;
    int8_t *dst = patch;
    for (int32_t fy = 0; fy < w->filter_height; ++fy) {
        const int32_t in_y = y0 + fy * w->dilation_height;
        if (in_y < 0 || in_y >= w->input_height) {
            memset(dst, zero_point, (size_t)w->filter_width * depth);
            dst += (size_t)w->filter_width * depth;
            continue;
        }
        const int8_t *row = image + (size_t)in_y * (size_t)w->input_width * depth;
        if (w->dilation_width == 1 && x0 >= 0 && x0 + w->filter_width <= w->input_width) {
            const size_t run = (size_t)w->filter_width * depth; /* the whole filter row is inside: one copy */
            memcpy(dst, row + (size_t)x0 * depth, run);
            dst += run;
            continue;
        }
        for (int32_t fx = 0; fx < w->filter_width; ++fx) {
            const int32_t in_x = x0 + fx * w->dilation_width;
            if (in_x < 0 || in_x >= w->input_width) {
                memset(dst, zero_point, depth);
            } else {
                memcpy(dst, row + (size_t)in_x * depth, depth);
            }
            dst += depth;
        }
    }
    memset(dst, zero_point, (size_t)(patch + patch_bytes - dst)); /* up to a whole group */
}

/* 1x1, no padding, folded requantization: each pixel's input channels are one run against every block, nothing
 * else per pixel. Its own small frame: the deepest stack is this and the assembly's. */
static TD_NOINLINE TD_HOT void conv_pointwise(const td_conv_2d_fast_params *params, const int8_t *input,
                                              int8_t *output)
{
    const td_window *w = &params->window;
    const td_fast_requant *q = &params->requant;
    const uint32_t offset = td_offset_pair(q->input_offset);
    const size_t depth = (size_t)w->input_depth;
    const size_t image_bytes = (size_t)w->input_height * (size_t)w->input_width * depth;
    int8_t *out = output;
    for (int32_t b = 0; b < w->batches; ++b) {
        const int8_t *image = input + (size_t)b * image_bytes;
        for (int32_t out_y = 0; out_y < w->output_height; ++out_y) {
            const int8_t *x = image + (size_t)(out_y * w->stride_height) * (size_t)w->input_width * depth;
            for (int32_t out_x = 0; out_x < w->output_width; ++out_x, x += (size_t)w->stride_width * depth) {
                td_dot_blocks_folded(x, x + depth, offset, params->weights, q->folded, out);
                out += w->output_depth;
            }
        }
    }
}

static TD_NOINLINE TD_HOT void conv_general(const td_conv_2d_fast_params *params, const int8_t *input, int8_t *output)
{
    const td_window *w = &params->window;
    const td_fast_requant *q = &params->requant;
    const int8_t zero_point = (int8_t)(-q->input_offset);
    const size_t image_bytes = (size_t)w->input_height * (size_t)w->input_width * (size_t)w->input_depth;
    int8_t patch[TD_CONV_FAST_PATCH_MAX];
    td_segment segments[TD_CONV_FAST_ROWS_MAX];
    if (params->patch_bytes > TD_CONV_FAST_PATCH_MAX ||
        (params->patch_bytes == 0 && w->filter_height > TD_CONV_FAST_ROWS_MAX)) {
        return; /* the generator never emits these */
    }
    int8_t *out = output;
    for (int32_t b = 0; b < w->batches; ++b) {
        const int8_t *image = input + (size_t)b * image_bytes;
        for (int32_t out_y = 0; out_y < w->output_height; ++out_y) {
            const int32_t y0 = out_y * w->stride_height - w->pad_top;
            for (int32_t out_x = 0; out_x < w->output_width; ++out_x) {
                const int32_t x0 = out_x * w->stride_width - w->pad_left;
                int32_t count = 1;
                if (params->patch_bytes > 0) {
                    gather_patch(w, image, y0, x0, zero_point, patch, params->patch_bytes);
                    segments[0].x = patch;
                    segments[0].length = params->patch_bytes;
                    segments[0].first_group = 0;
                } else {
                    count = row_segments(w, image, y0, x0, segments);
                }
                td_dot_row(q, segments, count, params->weights, params->groups, w->output_depth, out);
                out += w->output_depth;
            }
        }
    }
}

void td_conv_2d_fast_s8(const td_conv_2d_fast_params *params, const int8_t *input, int8_t *output)
{
    const td_window *w = &params->window;
    if (params->patch_bytes == 0 && w->filter_height == 1 && w->filter_width == 1 && w->pad_top == 0 &&
        w->pad_left == 0 && params->requant.folded != NULL && w->input_depth > 0 && (w->input_depth & 3) == 0 &&
        w->output_depth > 0 && (w->output_depth & 3) == 0) {
        conv_pointwise(params, input, output);
    } else {
        conv_general(params, input, output);
    }
}
