/* Geometry of a sliding-window op (convolutions, pooling) on NHWC tensors, precomputed by the generator. */
#ifndef TD_WINDOW_H
#define TD_WINDOW_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t batches;
    int32_t input_height, input_width, input_depth;
    int32_t output_height, output_width, output_depth;
    int32_t filter_height, filter_width;
    int32_t stride_height, stride_width;
    int32_t dilation_height, dilation_width;
    int32_t pad_top, pad_left; /* rows/columns of implicit zero-point padding before the input */
} td_window;

/* Requantization shared by convolutions: per-output-channel (or a single) multiplier/shift and the clamp. */
typedef struct {
    int32_t input_offset;  /* minus the input zero point */
    int32_t output_offset; /* the output zero point */
    int32_t activation_min;
    int32_t activation_max;
    int32_t per_channel;   /* 1: one multiplier/shift per output channel */
    const int32_t *multipliers;
    const int32_t *shifts;
} td_requant;

/* The filter taps [*first, *end) along one axis that land inside the input when the window starts at origin (which
 * may be negative: padding); the other taps read padding. With dilation 1: first = max(0, -origin),
 * end = min(taps, size - origin) (end may fall below first: no tap lands inside). */
static inline void td_window_taps(int32_t origin, int32_t taps, int32_t dilation, int32_t input_size, int32_t *first,
                                  int32_t *end)
{
    const int32_t first_inside = origin < 0 ? (-origin + dilation - 1) / dilation : 0;
    const int32_t end_inside = (input_size - origin + dilation - 1) / dilation;
    *first = first_inside;
    *end = end_inside < taps ? end_inside : taps;
}

/* Element offset of pixel (b, y, x) of an NHWC tensor of the given height, width and depth. */
static inline size_t td_pixel_offset(int32_t b, int32_t y, int32_t x, int32_t height, int32_t width, int32_t depth)
{
    return (((size_t)b * (size_t)height + (size_t)y) * (size_t)width + (size_t)x) * (size_t)depth;
}

/* A walk over a window op's output pixels (batch, row, column) in address order. For the current pixel it holds
 * the window's origin in the input and the filter taps that land inside the input, clipped once per row or column
 * so the kernels' inner loops need no bounds test. */
typedef struct {
    int32_t b, out_y, out_x;
    int32_t y0, x0;             /* the window's top-left input position (negative: in the padding) */
    int32_t fy_first, fy_end;   /* filter rows [fy_first, fy_end) read the input, the others padding */
    int32_t fx_first, fx_end;   /* filter columns likewise */
} td_window_walk;

/* Moves to the next output pixel; returns 0 once every pixel has been visited. */
static inline int td_window_next(td_window_walk *at, const td_window *w)
{
    if (++at->out_x >= w->output_width) {
        at->out_x = 0;
        if (++at->out_y >= w->output_height) {
            at->out_y = 0;
            if (++at->b >= w->batches) {
                return 0;
            }
        }
        at->y0 = at->out_y * w->stride_height - w->pad_top;
        td_window_taps(at->y0, w->filter_height, w->dilation_height, w->input_height, &at->fy_first, &at->fy_end);
    }
    at->x0 = at->out_x * w->stride_width - w->pad_left;
    td_window_taps(at->x0, w->filter_width, w->dilation_width, w->input_width, &at->fx_first, &at->fx_end);
    return 1;
}

/* Starts at the first output pixel; returns 0 when there is none. */
static inline int td_window_begin(td_window_walk *at, const td_window *w)
{
    if (w->batches <= 0 || w->output_height <= 0 || w->output_width <= 0) {
        return 0;
    }
    at->b = 0; /* one step before the first pixel: the step computes its row and column */
    at->out_y = -1;
    at->out_x = w->output_width - 1;
    return td_window_next(at, w);
}

/* Element offset in the input of the pixel under filter tap (fy, fx) of the current window. */
static inline size_t td_window_tap_offset(const td_window_walk *at, const td_window *w, int32_t fy, int32_t fx)
{
    return td_pixel_offset(at->b, at->y0 + fy * w->dilation_height, at->x0 + fx * w->dilation_width, w->input_height,
                           w->input_width, w->input_depth);
}

#endif /* TD_WINDOW_H */
