/* Geometry of a sliding-window op (convolutions, pooling) on NHWC tensors, precomputed by the generator. */
#ifndef TD_WINDOW_H
#define TD_WINDOW_H

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

#endif /* TD_WINDOW_H */
