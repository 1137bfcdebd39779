/* RESIZE_NEAREST_NEIGHBOR on NHWC tensors of any element type: each output pixel copies the input pixel the
 * generator picked for its row and column (TFLite's float arithmetic for align_corners / half_pixel_centers is
 * done at generation time). */
#ifndef TD_RESIZE_NEAREST_NEIGHBOR_H
#define TD_RESIZE_NEAREST_NEIGHBOR_H

#include <stdint.h>

typedef struct {
    int32_t batches;
    int32_t input_height, input_width;
    int32_t output_height, output_width;
    int32_t pixel_bytes;    /* depth times the element size */
    const int32_t *rows;    /* output_height input rows */
    const int32_t *columns; /* output_width input columns */
} td_resize_nearest_neighbor_params;

void td_resize_nearest_neighbor(const td_resize_nearest_neighbor_params *params, const uint8_t *input,
                                uint8_t *output);

#endif /* TD_RESIZE_NEAREST_NEIGHBOR_H */
