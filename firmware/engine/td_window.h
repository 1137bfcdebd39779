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
 * may be negative: padding); the other taps read padding. Computed once per output row or column so the reference
 * kernels' inner loops need no bounds test. With dilation 1: first = max(0, -origin), end = min(taps, size - origin)
 * (end may fall below first: no tap lands inside). */
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

#endif /* TD_WINDOW_H */
